"""Login rate limiting: LOGIN_MAX_ATTEMPTS wrong passwords for one username from one
address lock that pair out for LOGIN_LOCKOUT_S.

Counts live in the database (`LoginFailure`), so every daphne process sees the same
ones. A locked-out attempt is refused before the password is checked, so guessing
goes no further during the lockout. A successful login clears the count.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.db import transaction
from django.utils import timezone

from webapp.accounts.models import LoginFailure

UNKNOWN_IP = "0.0.0.0"


def client_ip(request) -> str:
    """The client's address (daphne's --proxy-headers puts the proxy's
    X-Forwarded-For there)."""
    address = (request.META.get("REMOTE_ADDR") or "") if request else ""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return UNKNOWN_IP


def _key(username: str, ip: str) -> dict:
    return {"username": username.strip().lower()[:150], "ip": ip}


def _lockout() -> timedelta:
    return timedelta(seconds=settings.LOGIN_LOCKOUT_S)


def lockout_left_s(username: str, ip: str) -> float:
    """Seconds until this username may try again from this address (0: now)."""
    row = LoginFailure.objects.filter(**_key(username, ip)).first()
    if row is None or row.failures < settings.LOGIN_MAX_ATTEMPTS:
        return 0.0
    unlocks_at = row.last_failure_at + _lockout()
    return max(0.0, (unlocks_at - timezone.now()).total_seconds())


def record_failure(username: str, ip: str) -> int:
    """Count one wrong password; returns the failures within the lockout window."""
    now = timezone.now()
    with transaction.atomic():
        row, _ = LoginFailure.objects.select_for_update().get_or_create(
            **_key(username, ip), defaults={"last_failure_at": now}
        )
        # failures older than a lockout are forgotten: a typo a day never locks
        if now - row.last_failure_at > _lockout():
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        row.save(update_fields=["failures", "last_failure_at"])
    return row.failures


def clear_failures(username: str, ip: str) -> None:
    LoginFailure.objects.filter(**_key(username, ip)).delete()


def lockout_message(left_s: float) -> str:
    minutes = max(1, math.ceil(left_s / 60))
    return (
        f"Too many failed logins for this username from your address: try again "
        f"in {minutes} minute{'s' if minutes != 1 else ''}."
    )


class RateLimitedLogin:
    """Mixin for Django's login forms: refuses locked-out attempts and counts
    wrong passwords. Sets `locked_out` (the message) for the template."""

    locked_out = ""

    def clean(self):
        username = self.data.get("username", "")
        ip = client_ip(self.request)
        left_s = lockout_left_s(username, ip)
        if left_s > 0:
            self._refuse(left_s)
        try:
            cleaned = super().clean()
        except forms.ValidationError as error:
            if error.code == "invalid_login":
                failures = record_failure(username, ip)
                if failures >= settings.LOGIN_MAX_ATTEMPTS:
                    self._refuse(settings.LOGIN_LOCKOUT_S)
            raise
        clear_failures(username, ip)
        return cleaned

    def _refuse(self, left_s: float):
        self.locked_out = lockout_message(left_s)
        raise forms.ValidationError(self.locked_out, code="locked_out")


class LoginForm(RateLimitedLogin, AuthenticationForm):
    pass


class AdminLoginForm(RateLimitedLogin, AdminAuthenticationForm):
    pass
