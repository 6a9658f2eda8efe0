"""Agent tokens: how a person's local agent proves who it streams for."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "emgagent_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AgentTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class AgentToken(models.Model):
    """A named credential for one agent. Only its SHA-256 is stored."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_tokens"
    )
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(
        max_length=16, help_text="first characters, to tell tokens apart"
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # presence, kept up to date by the agent's websocket consumer
    connected = models.BooleanField(default=False)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    device_info = models.JSONField(default=dict, blank=True)

    objects = AgentTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def issue(cls, owner, name: str) -> tuple["AgentToken", str]:
        """Create a token; returns it with the secret, which is never stored."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            owner=owner,
            name=name,
            token_hash=hash_token(secret),
            hint=secret[: len(TOKEN_PREFIX) + 4],
        )
        return token, secret

    @classmethod
    def find_active(cls, secret: str) -> "AgentToken | None":
        return (
            cls.objects.active()
            .select_related("owner")
            .filter(token_hash=hash_token(secret))
            .first()
        )

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def is_online(self) -> bool:
        """Connected and heard from recently (a crashed server can't clear the flag)."""
        if not self.connected or self.last_seen_at is None:
            return False
        age_s = (timezone.now() - self.last_seen_at).total_seconds()
        return age_s < settings.AGENT_STALE_AFTER_S

    @property
    def group_name(self) -> str:
        """The channel group the agent's connection listens on for commands."""
        return f"agent.{self.pk}"


class LoginFailure(models.Model):
    """Recent wrong passwords for one username from one address (login_limit.py).

    In the database, not in a process: every daphne process counts the same."""

    username = models.CharField(max_length=150)
    ip = models.GenericIPAddressField(unpack_ipv4=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["username", "ip"], name="one_login_failure_row"
            )
        ]

    def __str__(self) -> str:
        return f"{self.username} from {self.ip}: {self.failures}"
