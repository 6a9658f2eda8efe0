"""Names the gesture a live hand is making, from example poses: no training.

A gesture is defined by one or more example hands (21 joints, mm, wrist at the
origin, MediaPipe order), or by joint angles turned into such hands by the hand
model. The live hand is the mean of the last `window_s` of predicted poses (a
held gesture, not one frame's jitter); each gesture's distance is the mean joint
distance (MPJPE, mm) from it to the gesture's nearest example, the example's
mirror image counting too (a left hand is the right one mirrored, x -> -x). The
confidence is a softmax over the gestures of -distance / TEMPERATURE_MM; when even
the nearest gesture is farther than `max_distance_mm`, no gesture is named. This
works with any live pose model, since it reads only the poses.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from labeling.kinematics import angles_to_mano_pose, forward_kinematics

TEMPERATURE_MM = 4.0  # 4 mm closer: e times likelier
MAX_DISTANCE_MM = 25.0  # farther than this from every example: no gesture
WINDOW_S = 0.3
MIRROR_X = np.array([-1.0, 1.0, 1.0])
# The seed's gesture set (protocol 000), the default examples.
DEFAULT_GESTURES = (
    "rest", "open", "fist", "point", "pinch", "peace", "thumb_flex", "index_flex",
    "middle_flex", "ring_flex", "pinky_flex",
)  # fmt: skip


@dataclass
class GestureGuess:
    """gesture: the name, or None when no example is near; confidence: 0..1 (the
    named gesture's share); distance_mm: MPJPE to its nearest example (None where
    the guess is not made in joint space)."""

    gesture: str | None
    confidence: float
    distance_mm: float | None = None

    def to_message(self) -> dict:
        message = {
            "gesture": self.gesture,
            "gesture_confidence": round(self.confidence, 3),
        }
        if self.distance_mm is not None:
            message["gesture_distance_mm"] = round(self.distance_mm, 1)
        return message


def joints_from_angles(angles: np.ndarray) -> np.ndarray:
    """(E, 20) joint angles (rad) -> (E, 21, 3) mm hands of the built-in model."""
    angles = np.atleast_2d(np.asarray(angles, dtype=np.float64))
    return forward_kinematics(angles_to_mano_pose(angles)).astype(np.float64)


def default_examples() -> dict[str, np.ndarray]:
    """Gesture -> (1, 21, 3) mm: the recording prompts' target hands."""
    from recorder.guided.poses import TARGET_ANGLES  # the prompts' own poses

    return {name: joints_from_angles(TARGET_ANGLES[name]) for name in DEFAULT_GESTURES}


class GestureRecognizer:
    """Feed it live poses (`push`); it names the gesture they hold."""

    def __init__(
        self, examples: dict[str, np.ndarray], window_s: float = WINDOW_S,
        max_distance_mm: float = MAX_DISTANCE_MM,
    ) -> None:  # fmt: skip
        self.names, self.examples, self.owner = self._check(examples)
        self.window_s = window_s
        self.max_distance_mm = max_distance_mm
        self._recent: deque[tuple[float, np.ndarray]] = deque()

    @staticmethod
    def _check(examples: dict) -> tuple[list[str], np.ndarray, np.ndarray]:
        if not examples:
            raise ValueError("a gesture recognizer needs at least one gesture")
        names, hands, owner = list(examples), [], []
        for index, name in enumerate(names):
            joints = np.asarray(examples[name], dtype=np.float64)
            joints = joints[None] if joints.ndim == 2 else joints
            if joints.ndim != 3 or joints.shape[1:] != (21, 3) or len(joints) == 0:
                raise ValueError(
                    f"gesture {name!r}: examples must be (n, 21, 3) joints in mm, "
                    f"got {joints.shape}"
                )
            if not np.isfinite(joints).all():
                raise ValueError(f"gesture {name!r}: examples hold NaN or inf")
            hands += [joints, joints * MIRROR_X]
            owner += [index] * (2 * len(joints))
        return names, np.concatenate(hands), np.array(owner)

    def classify(self, joints_mm: np.ndarray) -> GestureGuess:
        """The gesture of one hand (21, 3) mm."""
        distances = np.linalg.norm(self.examples - joints_mm[None], axis=2).mean(axis=1)
        nearest = np.full(len(self.names), np.inf)
        np.minimum.at(nearest, self.owner, distances)
        weights = np.exp(-(nearest - nearest.min()) / TEMPERATURE_MM)
        best = int(nearest.argmin())
        confidence = float(weights[best] / weights.sum())
        if nearest[best] > self.max_distance_mm:
            return GestureGuess(None, 0.0, float(nearest[best]))
        return GestureGuess(self.names[best], confidence, float(nearest[best]))

    def push(self, time_s: float, joints_mm: np.ndarray) -> GestureGuess:
        """Adds a pose at `time_s` (s) and names the gesture of the last window."""
        self.add(time_s, joints_mm)
        return self.guess()

    def add(self, time_s: float, joints_mm: np.ndarray) -> None:
        """Adds a pose at `time_s` (s) to the window, naming nothing yet (a chunk
        brings several poses; only the newest window's gesture is shown)."""
        joints_mm = np.asarray(joints_mm, dtype=np.float64).reshape(21, 3)
        self._recent.append((time_s, joints_mm))
        while self._recent and self._recent[0][0] < time_s - self.window_s:
            self._recent.popleft()

    def guess(self) -> GestureGuess:
        """The gesture of the window's mean pose (after at least one `add`)."""
        return self.classify(np.mean([joints for _, joints in self._recent], axis=0))

    def reset(self) -> None:
        self._recent.clear()
