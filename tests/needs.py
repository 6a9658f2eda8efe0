"""What a test needs from the machine: a missing piece fails the test under CI=true
(CI must run it) and skips it elsewhere (a laptop without it)."""

import os

import pytest


def missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
