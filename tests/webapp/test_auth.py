"""Logging in and out, password changes, and which pages need a login."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.webapp.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_the_login_page_renders():
    response = Client().get("/login/")
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_logging_in_leads_to_the_sessions_page(alice):
    client = Client()
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/sessions/"
    assert client.get("/sessions/").context["user"] == alice


def test_a_wrong_password_is_refused(alice):
    response = Client().post("/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "/sessions/",
        "/subjects/",
        "/tokens/",
        "/sessions/1/",
        "/sessions/1/status",
        "/sessions/1/download",
        "/password/",
    ],
)
def test_pages_require_a_login(path):
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/login/?next={path}")


def test_logging_out_takes_a_post(alice_client):
    response = alice_client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert alice_client.get("/sessions/").status_code == 302


def test_logging_out_by_get_is_not_allowed(alice_client):
    assert alice_client.get("/logout/").status_code == 405
    assert alice_client.get("/sessions/").status_code == 200


def test_changing_the_password_retires_the_old_one(alice, alice_client):
    response = alice_client.post(
        "/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-brand-new-secret-42",
            "new_password2": "a-brand-new-secret-42",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/password/done/"
    assert alice_client.get("/sessions/").status_code == 200  # still logged in
    assert not Client().login(username="alice", password=PASSWORD)
    assert Client().login(username="alice", password="a-brand-new-secret-42")


def test_a_password_change_needs_the_old_password(alice, alice_client):
    response = alice_client.post(
        "/password/",
        {
            "old_password": "wrong",
            "new_password1": "a-brand-new-secret-42",
            "new_password2": "a-brand-new-secret-42",
        },
    )
    assert response.status_code == 200
    assert "old_password" in response.context["form"].errors
    assert Client().login(username="alice", password=PASSWORD)


def test_a_staff_user_reaches_the_admin():
    User.objects.create_user(
        "carol", password=PASSWORD, is_staff=True, is_superuser=True
    )
    client = Client()
    client.login(username="carol", password=PASSWORD)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/accounts/agenttoken/").status_code == 200
    assert b'href="/admin/"' in client.get("/sessions/").content


def test_a_plain_user_is_kept_out_of_the_admin(alice_client):
    response = alice_client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert b'href="/admin/"' not in alice_client.get("/sessions/").content
