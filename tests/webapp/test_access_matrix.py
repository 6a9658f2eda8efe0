"""Every route of the portal, for an anonymous visitor, another user and the owner.

Nothing of the owner's leaks: an anonymous visitor is sent to the login page (or
refused, for an agent's token routes and websockets), another user gets 404 (to
him, alice's objects do not exist) with none of her data in the body, and the owner's
own request works. Admin routes are for staff only. POSTs without a CSRF token are
refused.

The routes are counted by walking Django's URL resolver: a route added without an
entry in HTTP_ROUTES fails test_every_route_has_an_entry, and every admin route is
exercised for staff and non-staff alike (a newly registered model needs an object in
build_world()). Websocket routes: test_access_matrix_ws.py.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from tests.webapp.access_world import MARK, World, alices_rows, build_world
from webapp.recordings.models import RecordingSession

ANONYMOUS_TO_LOGIN = (302, "/login/?next=")


@dataclass(frozen=True)
class Http:
    """How to exercise one route, and what its owner gets."""

    method: str  # "get" or "post"
    url: Callable[[World], str]
    owner: tuple[int, str | None]  # status, and the redirect's start if any
    # object: alice's own object (bob: 404); list: each user's own rows;
    # account: one's own login; public: anyone; agent: an agent's token, no cookie
    scope: str = "object"
    data: Callable[[World], dict] | None = None
    owner_sees_mark: bool = False  # the owner's body shows her data
    # something else only the owner may see, as it appears in her body
    owner_only: Callable[[World], str] | None = None
    anonymous: tuple[int, str | None] = ANONYMOUS_TO_LOGIN


def session_url(suffix: str, which: str = "session") -> Callable[[World], str]:
    return lambda w: f"/sessions/{getattr(w, which).pk}/{suffix}"


def run_url(suffix: str) -> Callable[[World], str]:
    return lambda w: f"/models/{w.run.pk}/{suffix}"


def to_session(w: World) -> str:
    return f"/sessions/{w.session.pk}/"


HTTP_ROUTES: dict[str, Http] = {
    "home": Http("get", lambda w: "/", (302, "/sessions/"), "public",
                 anonymous=(302, "/sessions/")),
    "login": Http("get", lambda w: "/login/", (200, None), "public",
                  anonymous=(200, None)),
    "logout": Http("post", lambda w: "/logout/", (302, "/login/"), "account",
                   anonymous=(302, "/login/")),
    "password_change": Http("get", lambda w: "/password/", (200, None), "account"),
    "password_change_done": Http("get", lambda w: "/password/done/", (200, None),
                                 "account"),
    "tokens": Http("get", lambda w: "/tokens/", (200, None), "list",
                   owner_sees_mark=True),
    "revoke_token": Http("post", lambda w: f"/tokens/{w.token.pk}/revoke",
                         (302, "/tokens/")),
    "subjects": Http("get", lambda w: "/subjects/", (200, None), "list",
                     owner_sees_mark=True),
    "protocols": Http("get", lambda w: "/protocols/", (200, None), "list",
                      owner_sees_mark=True),
    "delete_protocol": Http("post", lambda w: f"/protocols/{w.protocol.pk}/delete",
                            (302, "/protocols/")),
    "sessions": Http("get", lambda w: "/sessions/", (200, None), "list",
                     owner_sees_mark=True),
    "session": Http("get", session_url(""), (200, None), owner_sees_mark=True),
    "session_status": Http("get", session_url("status"), (200, None),
                           owner_sees_mark=True),
    "start_recording": Http("post", session_url("start"), (302, "/sessions/"),
                            data=lambda w: {"agent": w.token.pk}),
    "stop_recording": Http("post", session_url("stop", "recording"),
                           (302, "/sessions/")),
    "download": Http("get", session_url("download"), (200, None)),
    "request_video": Http("post", session_url("video/request"), (302, "/sessions/")),
    "video": Http("get", session_url("video"), (200, None), owner_sees_mark=True),
    "video_frames": Http("get", session_url("video/frames"), (200, None),
                         owner_sees_mark=True),
    "agent_video": Http("post", lambda w: f"/agent/sessions/{w.session.pk}/video",
                        (200, None), "agent", anonymous=(401, None)),
    "agent_video_frames": Http(
        "post", lambda w: f"/agent/sessions/{w.session.pk}/video/frames",
        (200, None), "agent", anonymous=(401, None)),
    "live_hand": Http("get", session_url("hand/"), (200, None), owner_sees_mark=True),
    "review": Http("get", session_url("review/"), (200, None), owner_sees_mark=True),
    "review_overview": Http("get", session_url("review/overview"), (200, None)),
    "review_emg": Http("get", session_url("review/emg?start=0&end=1"), (200, None)),
    "review_labels": Http("get", session_url("review/labels?start=0&end=1"),
                          (200, None)),
    "start_labeling": Http("post", session_url("label"), (302, "/jobs/"),
                           data=lambda w: {"alignment": "umeyama_scale",
                                           "optimizer": "adam"}),
    "job": Http("get", lambda w: f"/jobs/{w.job.pk}/", (200, None)),
    "job_status": Http("get", lambda w: f"/jobs/{w.job.pk}/status", (200, None)),
    "registry": Http("get", lambda w: "/models/", (200, None), "list",
                     owner_sees_mark=True),
    "start_training": Http("get", lambda w: "/models/train/", (200, None), "list",
                           owner_sees_mark=True),
    "compare_models": Http(
        "get", lambda w: f"/models/compare/?a={w.run.pk}&b={w.other_run.pk}",
        (200, None), owner_sees_mark=True),
    "training_run": Http("get", run_url(""), (200, None), owner_sees_mark=True),
    "training_status": Http("get", run_url("status"), (200, None)),
    "cancel_training": Http("post", run_url("cancel"), (302, "/models/")),
    "resume_training": Http("post", run_url("resume"), (302, "/models/")),
    "finetune_model": Http("post", run_url("finetune"), (302, "/models/")),
    "download_checkpoint": Http("get", run_url("download"), (200, None),
                                owner_sees_mark=True),
    "export_model": Http("post", run_url("export/onnx"), (302, "/models/")),
    "download_export": Http("get", run_url("download/onnx"), (200, None),
                            owner_sees_mark=True),
    # a worker training alice's run: she gets its link, others only its kind
    "workers": Http("get", lambda w: "/workers/", (200, None), "list",
                    owner_only=lambda w: f'href="/models/{w.run.pk}/"'),
}  # fmt: skip

# admin routes answered to staff with something other than 200 (GET, no query)
ADMIN_STAFF_STATUS = {
    "admin/logout/": 405,  # POST only
    "admin/autocomplete/": 403,  # needs its query parameters
    "admin/r/<path:content_type_id>/<path:object_id>/": 302,  # to the object's page
    "admin/(?P<url>.*)$": 404,  # the catch-all, for a page that does not exist
}


# ---------------------------------------------------------------- the routes


def walk(patterns, prefix: str = "", namespace: str | None = None):
    """(route pattern, name) of every URL the resolver knows, included ones too."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(
                pattern.url_patterns,
                prefix + str(pattern.pattern),
                pattern.namespace or namespace,
            )
        else:
            assert isinstance(pattern, URLPattern)
            name = f"{namespace}:{pattern.name}" if namespace else pattern.name
            yield prefix + str(pattern.pattern), name


def portal_routes() -> dict[str, str]:
    """name -> pattern of every route outside the admin."""
    routes = [r for r in walk(get_resolver().url_patterns) if r[0] != "admin/"]
    portal = {name: pattern for pattern, name in routes if name and ":" not in name}
    assert len(portal) == len([r for r in routes if not r[0].startswith("admin/")])
    return portal


def admin_routes() -> list[str]:
    return [p for p, _ in walk(get_resolver().url_patterns) if p.startswith("admin/")]


def test_every_route_has_an_entry():
    assert sorted(portal_routes()) == sorted(HTTP_ROUTES)
    # every admin route is exercised by the admin tests below: staff only
    admin = admin_routes()
    assert len(admin) > 40 and "admin/" in admin
    print(f"routes: {len(HTTP_ROUTES)} portal, {len(admin)} admin")


def test_each_entry_names_the_route_it_exercises(world):
    """An entry's URL must resolve to the route it stands for."""
    for name, route in HTTP_ROUTES.items():
        assert resolve(route.url(world).split("?")[0]).url_name == name


# ---------------------------------------------------------------- portal routes


@pytest.fixture
def world(settings, tmp_path, db) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_world()


def body_of(response) -> bytes:
    if response.streaming:  # the test client closes the file once it is read
        return b"".join(response.streaming_content)
    return response.content


def request(client: Client, route: Http, world: World, **headers):
    data = route.data(world) if route.data else {}
    return getattr(client, route.method)(route.url(world), data, **headers)


def logged_in(user: User, **options) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def assert_answer(response, expected: tuple[int, str | None], name: str) -> None:
    status, location = expected
    assert response.status_code == status, (name, body_of(response)[:300])
    if location is not None:
        assert response["Location"].startswith(location), name


BROWSER_ROUTES = [name for name, r in HTTP_ROUTES.items() if r.scope != "agent"]


def test_an_anonymous_visitor_sees_nothing(world):
    before = alices_rows(world)
    for name in BROWSER_ROUTES:
        route = HTTP_ROUTES[name]
        response = request(Client(), route, world)
        assert_answer(response, route.anonymous, name)
        assert MARK.encode() not in body_of(response), name
    assert alices_rows(world) == before


def test_another_user_sees_and_changes_nothing(world):
    bob = logged_in(world.bob)
    before = alices_rows(world)
    for name in BROWSER_ROUTES:
        route = HTTP_ROUTES[name]
        response = request(bob, route, world)
        if name == "logout":  # the next routes need him logged in again
            bob = logged_in(world.bob)
        if route.scope == "object":
            assert response.status_code == 404, name
        else:  # his own list, account or a public page
            assert_answer(response, route.owner, name)
        body = body_of(response)
        assert MARK.encode() not in body, name
        if route.owner_only:
            assert route.owner_only(world).encode() not in body, name
        assert alices_rows(world) == before, name


def test_the_owner_is_served(world):
    for name in BROWSER_ROUTES:
        route = HTTP_ROUTES[name]
        with undone():  # each route sees the world as built (revoke, delete...)
            response = request(logged_in(world.alice), route, world)
            assert_answer(response, route.owner, name)
            body = body_of(response)
            if route.owner_sees_mark:  # the others' checks above could see a leak
                assert MARK.encode() in body, name
            if route.owner_only:
                assert route.owner_only(world).encode() in body, name


POSTS = [name for name in BROWSER_ROUTES if HTTP_ROUTES[name].method == "post"]


def test_a_post_without_a_csrf_token_is_refused(world):
    alice = logged_in(world.alice, enforce_csrf_checks=True)
    before = alices_rows(world)
    for name in POSTS:
        response = request(alice, HTTP_ROUTES[name], world)
        assert response.status_code == 403, name
        assert b"CSRF" in response.content, name
    assert alices_rows(world) == before
    assert len(POSTS) >= 10


@contextmanager
def undone():
    """Roll back whatever the block wrote to the database."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def test_logging_in_without_a_csrf_token_is_refused(world):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "alice", "password": "x"})
    assert response.status_code == 403


def test_a_post_with_the_csrf_token_of_the_page_works(world):
    client = logged_in(world.alice, enforce_csrf_checks=True)
    page = client.get("/subjects/").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        "/subjects/", {"name": "Zed", "handedness": "left", "csrfmiddlewaretoken": csrf}
    )
    assert response.status_code == 302
    assert world.alice.subjects.filter(name="Zed").exists()


# ---------------------------------------------------------------- agent routes

AGENT_ROUTES = [name for name, r in HTTP_ROUTES.items() if r.scope == "agent"]


def upload(world: World, route: Http, client: Client, secret: str | None):
    content = f"{MARK} uploaded".encode()
    headers = {"X-Content-SHA256": hashlib.sha256(content).hexdigest()}
    if secret:
        headers["Authorization"] = f"Token {secret}"
    return client.post(
        route.url(world), content, "application/octet-stream", headers=headers
    )


@pytest.mark.parametrize("name", AGENT_ROUTES)
@pytest.mark.parametrize(
    "who,status",
    [
        ("anonymous", 401),
        ("alice's browser login, no token", 401),  # cookies are not a token
        ("bob's token", 404),  # to bob, alice's session does not exist
        ("alice's token", 200),
    ],
)
def test_an_agent_route_takes_only_the_owners_token(world, name, who, status):
    route = HTTP_ROUTES[name]
    before = alices_rows(world)
    client = logged_in(world.alice) if "browser" in who else Client()
    secret = {"bob's token": world.bob_secret, "alice's token": world.secret}.get(who)
    response = upload(world, route, client, secret)
    assert response.status_code == status, response.content
    if status != 200:
        assert MARK.encode() not in response.content
        assert alices_rows(world) == before


# ---------------------------------------------------------------- the admin


def admin_url(pattern: str, world: World) -> str:
    """A concrete URL of an admin route, pointing at alice's objects (or at an
    object of its model, which the world makes one of each of)."""
    model_path = re.match(r"admin/(\w+)/(\w+)/<path:object_id>/", pattern)
    if model_path:
        app_label, model = model_path.groups()
        model_class = ContentType.objects.get(app_label=app_label, model=model)
        first = model_class.get_all_objects_for_this_type().order_by("pk").first()
        assert first is not None, f"build_world() makes no {app_label}.{model}"
        pattern = pattern.replace("<path:object_id>", str(first.pk))
    session_type = ContentType.objects.get_for_model(RecordingSession)
    replacements = {
        "<id>": str(world.alice.pk),
        "<path:content_type_id>": str(session_type.pk),
        "<path:object_id>": str(world.session.pk),
    }
    for placeholder, value in replacements.items():
        pattern = pattern.replace(placeholder, value)
    pattern = re.sub(r"\^\(\?P<app_label>[^)]*\)/\$", "recordings/", pattern)
    pattern = pattern.replace("(?P<url>.*)$", "no-such-page/")
    assert "<" not in pattern and "(" not in pattern, pattern
    return "/" + pattern


@pytest.mark.parametrize("who", ["anonymous", "alice", "bob"])
def test_the_admin_is_for_staff_only(world, who):
    client = Client() if who == "anonymous" else logged_in(getattr(world, who))
    for pattern in admin_routes():
        response = client.get(admin_url(pattern, world))
        body = body_of(response)
        assert MARK.encode() not in body, pattern
        if pattern == "admin/login/":
            assert response.status_code in (200, 302)
        elif pattern == "admin/logout/":  # nothing to show: back to the admin
            assert response.status_code in (302, 405)
        else:
            assert response.status_code == 302, pattern
            assert response["Location"].startswith("/admin/login/"), pattern


def test_staff_reach_every_admin_route(world):
    client = logged_in(world.carol)
    for pattern in admin_routes():
        response = client.get(admin_url(pattern, world))
        expected = ADMIN_STAFF_STATUS.get(pattern, 200)
        if pattern == "admin/login/":  # a logged-in staff user goes to the index
            expected = 302
        if re.fullmatch(r"admin/\w+/\w+/<path:object_id>/", pattern):
            expected = 302  # to the object's change page
        assert response.status_code == expected, pattern
