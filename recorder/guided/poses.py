"""Target hand poses for the recording page's 3D prompt.

Each gesture is 20 joint angles (radians, `labeling.kinematics.ANGLE_NAMES` order):
the simulator's `GESTURES`, plus a few that the emg2pose-style stages prompt for,
composed from their fingers. The page gets joints, not angles: 21 points in mm,
MediaPipe order, wrist at the origin, fingers along +y, palm toward +z.
"""

from __future__ import annotations

import numpy as np

from labeling.kinematics import angles_to_mano_pose, forward_kinematics
from recorder.simulation.gestures import GESTURES

ANGLES_PER_FINGER = 4
FINGER_INDEX = {"thumb": 0, "index": 1, "middle": 2, "ring": 3, "pinky": 4}


def _with_fingers(base: str, **finger_from: str) -> np.ndarray:
    """The angles of gesture `base`, with some fingers taken from other gestures,
    e.g. _with_fingers("fist", index="open") is a pointing hand."""
    angles = GESTURES[base].copy()
    for finger, source in finger_from.items():
        start = FINGER_INDEX[finger] * ANGLES_PER_FINGER
        stop = start + ANGLES_PER_FINGER
        angles[start:stop] = GESTURES[source][start:stop]
    return angles


def _pinch_with(finger: str) -> np.ndarray:
    """Thumb to `finger`: the index pinch's finger posture, moved to that finger."""
    angles = _with_fingers("rest", thumb="pinch")
    index = slice(ANGLES_PER_FINGER, 2 * ANGLES_PER_FINGER)
    start = FINGER_INDEX[finger] * ANGLES_PER_FINGER
    angles[start : start + ANGLES_PER_FINGER] = GESTURES["pinch"][index]
    return angles


EXTRA_GESTURES: dict[str, np.ndarray] = {
    "one": GESTURES["point"],
    "two": GESTURES["peace"],
    "three": _with_fingers("fist", index="open", middle="open", ring="open"),
    "four": _with_fingers("open", thumb="fist"),
    "five": GESTURES["open"],
    "thumb_out": _with_fingers("rest", thumb="open"),
    "middle_pinch": _pinch_with("middle"),
    "ring_pinch": _pinch_with("ring"),
    "pinky_pinch": _pinch_with("pinky"),
}

# the poses the 3D prompt wanders through during a free-movement step
FREE_MOVEMENT_TOUR = ("open", "fist", "point", "pinch", "peace", "thumbs_up", "rest")

TARGET_ANGLES: dict[str, np.ndarray] = {**GESTURES, **EXTRA_GESTURES}
GESTURE_NAMES = tuple(TARGET_ANGLES)


def target_joints_mm(gestures: list[str] | tuple[str, ...]) -> dict[str, list[float]]:
    """Gesture name -> its target hand as 63 floats (21 joints x, y, z in mm),
    rounded to 0.1 mm for the page."""
    names = list(dict.fromkeys(gestures))
    if not names:
        return {}
    angles = np.stack([TARGET_ANGLES[name] for name in names])  # (G, 20)
    joints = forward_kinematics(angles_to_mano_pose(angles))  # (G, 21, 3)
    return {
        name: np.round(joints[i].reshape(-1), 1).tolist()
        for i, name in enumerate(names)
    }
