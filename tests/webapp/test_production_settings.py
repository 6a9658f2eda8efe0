"""Production settings: DEBUG off, SECRET_KEY required, TLS's secure cookies and HSTS
(`manage.py check --deploy` clean), and the size limits of requests and messages."""

from __future__ import annotations

import inspect
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from daphne.server import Server
from django.conf import settings
from django.test import Client

from recorder.protocol import MAX_CHUNK_BYTES, MAX_TEXT_BYTES

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "TLS": "true",
    "ALLOWED_HOSTS": "portal.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://portal.example.org",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py in a fresh process, with the environment's settings given."""
    names = ("DEBUG", "SECRET_KEY", "TLS", "SECURE_COOKIES", "SECURE_SSL_REDIRECT")
    base = {k: v for k, v in os.environ.items() if k not in names}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env={**base, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_in_production():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_without_tls():
    """The check above can fail: without TLS there is no HSTS nor https redirect."""
    env = {**PRODUCTION, "TLS": "false"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


def test_production_needs_a_secret_key():
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = manage("check", **env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is false" in result.stderr


SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name, None) for name in (
    "DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
    "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "LOGIN_MAX_ATTEMPTS",
    "LOGIN_LOCKOUT_S", "DATA_UPLOAD_MAX_MEMORY_SIZE")}))
"""


def settings_in(**env: str) -> dict:
    names = ("DEBUG", "SECRET_KEY", "TLS", "SECURE_COOKIES", "SECURE_SSL_REDIRECT")
    base = {k: v for k, v in os.environ.items() if k not in names}
    result = subprocess.run(
        [sys.executable, "-c", SHOW_SETTINGS],
        env={**base, "DJANGO_SETTINGS_MODULE": "webapp.settings", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_tls_turns_on_secure_cookies_hsts_and_the_https_redirect():
    production = settings_in(**PRODUCTION, LOGIN_MAX_ATTEMPTS="7", FORM_MAX_KB="64")
    assert production == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 365 * 24 * 3600,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "LOGIN_MAX_ATTEMPTS": 7,
        "LOGIN_LOCKOUT_S": 900,
        "DATA_UPLOAD_MAX_MEMORY_SIZE": 64 * 1024,
    }


def test_the_embedded_mode_runs_without_tls():
    """This test run's settings: nothing set, as in `make up` on a laptop."""
    assert not (settings.TLS or settings.SESSION_COOKIE_SECURE)
    assert settings.SECURE_HSTS_SECONDS == 0 and not settings.SECURE_SSL_REDIRECT


@pytest.fixture
def tls(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True


def test_behind_tls_plain_http_is_redirected(tls):
    response = Client().get("/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/login/"


@pytest.mark.django_db
def test_behind_tls_pages_carry_hsts_and_secure_cookies(tls, alice):
    client = Client(HTTP_X_FORWARDED_PROTO="https")
    page = client.get("/login/")
    assert page.status_code == 200
    assert page["Strict-Transport-Security"].startswith("max-age=3600")
    assert page.cookies["csrftoken"]["secure"]
    response = client.post(
        "/login/", {"username": "alice", "password": "correct-horse-battery"}
    )
    assert response.status_code == 302
    assert response.cookies["sessionid"]["secure"]
    assert response.cookies["sessionid"]["httponly"]


# ---------------------------------------------------------------- size limits


@pytest.mark.django_db
def test_a_form_over_the_limit_is_refused_with_a_clear_answer(settings, alice_client):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024
    response = alice_client.post(
        "/subjects/", {"name": "Big", "handedness": "left", "notes": "x" * 20_000}
    )
    assert response.status_code == 413
    assert "at most 16 KB of form data (FORM_MAX_KB)" in response.content.decode()
    assert not alice_client.get("/subjects/").context["subjects"].exists()


@pytest.mark.django_db
def test_a_form_under_the_limit_is_taken(settings, alice_client):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024
    response = alice_client.post(
        "/subjects/", {"name": "Small", "handedness": "left", "notes": "x" * 10_000}
    )
    assert response.status_code == 302


def test_every_chunk_the_protocol_allows_passes_daphnes_websocket_limit():
    """daphne drops the connection of a websocket message over its limit before the
    consumer sees it; below it, the consumer answers an oversized one with
    too_large (tests/system/test_message_limits.py, test_agent_fuzz.py)."""
    defaults = inspect.signature(Server.__init__).parameters
    for name in ("websocket_max_message_size", "websocket_max_frame_size"):
        assert MAX_CHUNK_BYTES < defaults[name].default
        assert 4 * MAX_TEXT_BYTES < defaults[name].default  # UTF-8: 4 bytes a char
