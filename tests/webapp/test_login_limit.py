"""Login rate limiting: wrong passwords lock one username from one address out."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone

from tests.webapp.conftest import PASSWORD
from webapp.accounts.models import LoginFailure

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
LOCKED = "Too many failed logins"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_MAX_ATTEMPTS = 3
    settings.LOGIN_LOCKOUT_S = 600
    # these tests log in dozens of times: the slow production hasher adds nothing
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def timezone_ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def log_in(password, username="alice", ip="10.0.0.1", path="/login/"):
    client = Client(REMOTE_ADDR=ip)
    response = client.post(path, {"username": username, "password": password})
    return client, response


def fail(times: int, **where) -> None:
    for _ in range(times):
        _, response = log_in("wrong", **where)
        assert response.status_code == 200


def test_wrong_passwords_below_the_limit_do_not_lock(alice):
    fail(2)
    _, response = log_in(PASSWORD)
    assert response.status_code == 302
    assert not LoginFailure.objects.exists()  # a good login clears the count


def test_the_last_allowed_wrong_password_says_the_account_is_locked(alice):
    fail(2)
    _, response = log_in("wrong")
    page = response.content.decode()
    assert LOCKED in page and "10 minutes" in page
    assert "didn't match" not in page


def test_a_locked_out_login_is_refused_even_with_the_right_password(alice):
    fail(3)
    client, response = log_in(PASSWORD)
    assert response.status_code == 200
    assert LOCKED in response.content.decode()
    assert client.get("/sessions/").status_code == 302  # not logged in


def test_the_lockout_is_per_username_and_address(alice, bob):
    fail(3)
    assert log_in(PASSWORD, ip="10.0.0.2")[1].status_code == 302
    assert log_in(PASSWORD, username="bob")[1].status_code == 302


def test_the_username_is_counted_without_case_or_spaces(alice):
    fail(2)
    fail(1, username=" ALICE ")
    assert LOCKED in log_in(PASSWORD)[1].content.decode()


def test_the_lockout_ends_after_its_window(alice):
    fail(3)
    LoginFailure.objects.update(last_failure_at=timezone_ago(601))
    assert log_in(PASSWORD)[1].status_code == 302


def test_old_failures_are_forgotten(alice):
    fail(2)
    LoginFailure.objects.update(last_failure_at=timezone_ago(601))
    fail(2)  # 2 recent ones: still below 3
    assert log_in(PASSWORD)[1].status_code == 302


def test_unknown_usernames_are_limited_too(db):
    fail(3, username="nobody")
    assert LOCKED in log_in("wrong", username="nobody")[1].content.decode()


def test_the_admin_login_is_limited_too():
    User.objects.create_user("carol", password=PASSWORD, is_staff=True)
    fail(3, username="carol", path="/admin/login/")
    client, response = log_in(PASSWORD, username="carol", path="/admin/login/")
    assert LOCKED in response.content.decode()
    assert client.get("/admin/").status_code == 302


# A subprocess stands for another daphne process: it shares only the database.
COUNT_ELSEWHERE = """
import django
django.setup()
from django.test import Client
from django.utils import timezone
for _ in range(2):
    Client(REMOTE_ADDR="10.0.0.1", HTTP_HOST="localhost").post(
        "/login/", {"username": "alice", "password": "wrong"})
"""


@pytest.mark.django_db(transaction=True)
def test_failures_counted_by_another_process_lock_this_one(production_services):
    User.objects.create_user("alice", password=PASSWORD)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webapp.settings",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:"
        f"{db['PORT']}/{db['NAME']}",
        "LOGIN_MAX_ATTEMPTS": "3",
    }
    subprocess.run(
        [sys.executable, "-c", COUNT_ELSEWHERE], env=env, cwd=REPO, check=True
    )
    assert LoginFailure.objects.get().failures == 2
    fail(1)
    assert LOCKED in log_in(PASSWORD)[1].content.decode()
