"""The shared real MediaPipe data (beside the repository, as CI has it)."""

import os
from pathlib import Path

import pytest

HANDS_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "mediapipe_hands"
RECORDED_NAMES = ("pointing_up", "thumb_up", "victory")


def require_hands_dir() -> Path:
    """The data folder; a test without it fails under CI=true and skips elsewhere."""
    if not HANDS_DIR.is_dir():
        message = f"shared MediaPipe data not found at {HANDS_DIR}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return HANDS_DIR


@pytest.fixture(params=RECORDED_NAMES)
def recorded_path(request) -> Path:
    """Each real MediaPipe landmark result (.pbtxt) in turn."""
    return require_hands_dir() / f"{request.param}_landmarks.pbtxt"
