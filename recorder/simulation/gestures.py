"""Target hand postures (20 anatomical joint angles, radians) and the default protocol.

Angles follow `labeling.kinematics.ANGLE_NAMES`: per finger (thumb, index, middle,
ring, pinky) four values; thumb = cmc_abduction, cmc_flexion, mcp_flexion, ip_flexion;
fingers = mcp_abduction, mcp_flexion, pip_flexion, dip_flexion.
"""

from __future__ import annotations

import numpy as np

# Per-finger postures (abduction/cmc_abduction first, then three flexions).
_STRAIGHT = (0.0, 0.0, 0.0, 0.0)
_SPREAD = (0.25, -0.1, 0.0, 0.0)
_RELAXED = (0.0, 0.35, 0.45, 0.25)
_CURLED = (0.0, 1.45, 1.65, 1.0)
_THUMB_RELAXED = (0.25, 0.2, 0.15, 0.2)
_THUMB_OPEN = (0.6, -0.2, 0.0, -0.1)
_THUMB_TUCKED = (0.05, 0.7, 0.55, 0.9)
_THUMB_PINCH = (0.2, 0.45, 0.3, 0.35)
_INDEX_PINCH = (0.0, 0.8, 0.75, 0.45)
_THUMB_FLEXED = (0.05, 0.6, 0.55, 1.0)


def _hand(thumb, index, middle, ring, pinky) -> np.ndarray:
    return np.concatenate([thumb, index, middle, ring, pinky]).astype(np.float64)


GESTURES: dict[str, np.ndarray] = {
    "rest": _hand(_THUMB_RELAXED, _RELAXED, _RELAXED, _RELAXED, _RELAXED),
    "open": _hand(_THUMB_OPEN, _SPREAD, _SPREAD, _SPREAD, _SPREAD),
    "fist": _hand(_THUMB_TUCKED, _CURLED, _CURLED, _CURLED, _CURLED),
    "point": _hand(_THUMB_TUCKED, _STRAIGHT, _CURLED, _CURLED, _CURLED),
    "pinch": _hand(_THUMB_PINCH, _INDEX_PINCH, _RELAXED, _RELAXED, _RELAXED),
    "peace": _hand(_THUMB_TUCKED, _SPREAD, _SPREAD, _CURLED, _CURLED),
    "thumbs_up": _hand(_THUMB_OPEN, _CURLED, _CURLED, _CURLED, _CURLED),
    "thumb_flex": _hand(_THUMB_FLEXED, _RELAXED, _RELAXED, _RELAXED, _RELAXED),
    "index_flex": _hand(_THUMB_RELAXED, _CURLED, _RELAXED, _RELAXED, _RELAXED),
    "middle_flex": _hand(_THUMB_RELAXED, _RELAXED, _CURLED, _RELAXED, _RELAXED),
    "ring_flex": _hand(_THUMB_RELAXED, _RELAXED, _RELAXED, _CURLED, _RELAXED),
    "pinky_flex": _hand(_THUMB_RELAXED, _RELAXED, _RELAXED, _RELAXED, _CURLED),
}

# Grip effort 0..1 while holding each gesture: drives flexor/extensor co-contraction.
GRIP_EFFORT = {
    "rest": 0.0,
    "open": 0.25,
    "fist": 0.8,
    "point": 0.35,
    "pinch": 0.5,
    "peace": 0.3,
    "thumbs_up": 0.45,
    "thumb_flex": 0.15,
    "index_flex": 0.15,
    "middle_flex": 0.15,
    "ring_flex": 0.2,
    "pinky_flex": 0.2,
}

_PROMPTED = (
    "open",
    "fist",
    "point",
    "pinch",
    "peace",
    "thumbs_up",
    "thumb_flex",
    "index_flex",
    "middle_flex",
    "ring_flex",
    "pinky_flex",
)
HOLD_S = 2.0  # seconds each prompted gesture is held
REST_S = 1.5  # seconds of rest between prompts

# (gesture, hold seconds) steps; the protocol loops forever.
DEFAULT_PROTOCOL: tuple[tuple[str, float], ...] = tuple(
    step for gesture in _PROMPTED for step in ((gesture, HOLD_S), ("rest", REST_S))
)
