"""Suite-wide fixtures."""

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test import override_settings

from tests import needs


class FewRoundsPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2 with few rounds: a hash takes ~0.2 s with production's
    rounds, and the suite makes hundreds of users. Its hashes keep the algorithm
    name and store their rounds, so the server processes of the system tests
    (production settings) still check them."""

    iterations = 1000


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing():
    fast = f"{__name__}.FewRoundsPBKDF2PasswordHasher"
    with override_settings(PASSWORD_HASHERS=[fast, *settings.PASSWORD_HASHERS]):
        yield


@pytest.fixture
def production_services():
    """PostgreSQL and Redis, as production uses them. Under CI=true a missing
    service fails the test; elsewhere (a laptop without them) it is skipped."""
    engine = settings.DATABASES["default"]["ENGINE"]
    missing = []
    if "postgresql" not in engine:
        missing.append("PostgreSQL (set DATABASE_URL)")
    if not settings.REDIS_URL:
        missing.append("Redis (set REDIS_URL)")
    if missing:
        needs.missing(f"needs {' and '.join(missing)}; `make test` sets both up")
