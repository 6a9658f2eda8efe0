"""Every websocket route, for an anonymous client, another user and the owner.

Browser tabs log in with the session cookie of the portal (Channels' real
AuthMiddlewareStack) and must come from an allowed origin; the agent's route takes
a token, and a token acts only on the sessions its own agent records. The routes
are counted by walking the websocket URLRouter: a route added without an entry in
WEBSOCKET_ROUTES fails test_every_websocket_route_has_an_entry.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from recorder.protocol import make_message
from tests.webapp.access_world import MARK, World, alices_rows, build_world
from tests.webapp.ingest_helpers import (
    OPEN_COMMUNICATORS,
    chunk_frame,
    connect_agent,
    receive,
    say_hello,
    send_chunk,
)
from webapp.accounts.models import AgentToken
from webapp.asgi import application
from webapp.asgi import websocket_routes as router

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_communicators"),
]

AGENT = "ws/agent/"
# route -> the URL of alice's object it opens (the agent's route has none)
WEBSOCKET_ROUTES: dict[str, Callable[[World], str] | None] = {
    AGENT: None,
    "ws/sessions/<int:session_id>/live/": lambda w: (
        f"/ws/sessions/{w.recording.pk}/live/"
    ),
    "ws/sessions/<int:session_id>/hand/": lambda w: (
        f"/ws/sessions/{w.recording.pk}/hand/"
    ),
    "ws/models/<int:run_id>/": lambda w: f"/ws/models/{w.run.pk}/",
}
BROWSER_ROUTES = [route for route in WEBSOCKET_ROUTES if route != AGENT]


def test_every_websocket_route_has_an_entry():
    routes = [str(route.pattern) for route in router.routes]
    assert sorted(routes) == sorted(WEBSOCKET_ROUTES)
    print(f"routes: {len(routes)} websocket")


@pytest.fixture
async def world(settings, tmp_path) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CHUNK_STORE_DIR = tmp_path / "chunks"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return await sync_to_async(build_world)()


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}".encode()


async def open_tab(url: str, user=None, origin: bytes = b"http://127.0.0.1"):
    headers = [(b"origin", origin)]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie)(user)))
    tab = WebsocketCommunicator(application, url, headers=headers)
    OPEN_COMMUNICATORS.append(tab)
    connected, _ = await tab.connect()
    return tab, connected


@pytest.mark.parametrize("route", BROWSER_ROUTES)
async def test_a_tab_opens_only_for_the_owner_from_the_portal(world, route):
    url = WEBSOCKET_ROUTES[route](world)
    for who, origin in [
        (None, b"http://127.0.0.1"),  # anonymous
        (world.bob, b"http://127.0.0.1"),
        (world.alice, b"https://evil.example"),  # her cookie, another site's page
    ]:
        tab, connected = await open_tab(url, who, origin)
        assert not connected, (route, who, origin)
        assert await tab.receive_nothing(timeout=0.05)
    tab, connected = await open_tab(url, world.alice)
    assert connected


async def test_a_tab_of_another_user_gets_none_of_the_owners_data(world):
    """Bob's own tab on his own session hears nothing of alice's recording."""
    agent = await connect_agent(world.secret)
    await say_hello(agent, [world.recording.pk])
    bobs = await sync_to_async(_bobs_session)(world)
    bobs_tab, connected = await open_tab(f"/ws/sessions/{bobs.pk}/live/", world.bob)
    assert connected
    alices_tab, connected = await open_tab(
        f"/ws/sessions/{world.recording.pk}/live/", world.alice
    )
    assert connected
    # the first chunk tells the tabs the agent streams; they answer that they watch
    assert (await send_chunk(agent, world.recording.pk, 0))["type"] == "chunk.ack"
    await asyncio.sleep(0.3)
    assert (await send_chunk(agent, world.recording.pk, 1))["type"] == "chunk.ack"
    event = json.loads(await alices_tab.receive_from(timeout=5))
    assert event["type"] == "live.emg" and event["session"] == world.recording.pk
    assert await bobs_tab.receive_nothing(timeout=0.3)


def _bobs_session(world: World):
    from webapp.recordings.models import RecordingSession, Subject

    subject = Subject.objects.create(owner=world.bob, name="Bob")
    return RecordingSession.objects.create(
        owner=world.bob, subject=subject, status="recording"
    )


async def test_the_agent_route_refuses_a_missing_token(world):
    agent = await connect_agent(None)
    error = await receive(agent)
    assert error["code"] == "bad_token"
    assert (await agent.receive_output())["type"] == "websocket.close"


async def test_the_agent_route_refuses_a_browser_login_without_a_token(world):
    cookie = await sync_to_async(session_cookie)(world.alice)
    agent = WebsocketCommunicator(
        application, "/" + AGENT, headers=[(b"cookie", cookie)]
    )
    OPEN_COMMUNICATORS.append(agent)
    await agent.connect()
    assert (await receive(agent))["code"] == "bad_token"


def messages_about(session_id: int) -> list[str]:
    """Every agent message that names a session."""
    return [
        make_message("camera.status", session=session_id, state="ok", fps=30,
                     latency_ms=10, message=""),
        make_message("device.contact_report", session=session_id, pairs=[],
                     resistance_kohm=[], message="no measurement"),
        make_message("video.unavailable", session=session_id, reason=MARK),
        make_message("recording.stopped", session=session_id, chunks=0, samples=0,
                     dropped_packets=0, reason=MARK),
    ]  # fmt: skip


@pytest.mark.parametrize("whose", ["bob's token", "alice's other token"])
async def test_a_token_cannot_act_on_a_session_its_agent_does_not_record(world, whose):
    """Only the token that records a session may stream into it or report on it."""
    if whose == "bob's token":
        secret = world.bob_secret
    else:
        _, secret = await sync_to_async(AgentToken.issue)(world.alice, "other laptop")
    before = await sync_to_async(alices_rows)(world)
    agent = await connect_agent(secret)
    await say_hello(agent, [world.recording.pk])
    for session in (world.recording, world.session):
        await agent.send_to(bytes_data=chunk_frame(session.pk, 0))
        replies = [await receive(agent)]
        for text in messages_about(session.pk):
            await agent.send_to(text_data=text)
            replies.append(await receive(agent))
        assert [r.get("code") for r in replies] == ["unknown_session"] * 5, replies
        assert all(MARK not in json.dumps(r) for r in replies)
    assert await sync_to_async(alices_rows)(world) == before
    assert not (settings.CHUNK_STORE_DIR / f"session-{world.recording.pk}").exists()


async def test_the_owners_agent_streams_into_her_recording(world):
    agent = await connect_agent(world.secret)
    await say_hello(agent, [world.recording.pk])
    ack = await send_chunk(agent, world.recording.pk, 0)
    assert ack["type"] == "chunk.ack" and ack["seqs"] == [0]


async def test_a_revoked_tokens_open_connection_is_closed_and_stays_out(world):
    agent = await connect_agent(world.secret)
    await say_hello(agent, [world.recording.pk])
    await send_chunk(agent, world.recording.pk, 0)
    owner = Client()
    await sync_to_async(owner.force_login)(world.alice)
    await sync_to_async(owner.post)(f"/tokens/{world.token.pk}/revoke")
    assert (await receive(agent))["code"] == "token_revoked"
    assert (await agent.receive_output())["type"] == "websocket.close"
    again = await connect_agent(world.secret)
    assert (await receive(again))["code"] == "bad_token"
