"""Suite-wide fixtures."""

import pytest
from django.conf import settings

from tests import needs


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
