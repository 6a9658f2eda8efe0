"""What the live predictor emits, and the error it raises for unusable input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATUSES = ("ok", "rest", "held")
JOINT_DECIMALS = 1  # 0.1 mm: far below the model's error, and short messages


class InferenceInputError(ValueError):
    """EMG (or a checkpoint) a live predictor cannot use; the message names the
    problem for a person: the shapes, dtypes or channel counts involved."""


@dataclass
class PoseFrame:
    """One emitted hand pose.

    time_s: the agent-clock time (unix s) of the sample the pose's input ends at;
        for a "held" frame, the sample the output tick fell on.
    joints_mm: (21, 3) float32 mm, MediaPipe order, wrist at the origin.
    status: "ok"; "rest" (the arm is quiet: the pose is the model's guess at a
        relaxed hand, not a measurement); "held" (the input was unusable or the
        predictor is refilling its window after a burst of bad samples: the last
        good pose is repeated).
    update_ms: compute time of the `push` call that produced it.
    """

    time_s: float
    joints_mm: np.ndarray
    status: str
    update_ms: float = 0.0

    def to_message(self) -> dict:
        """A JSON-able dict: {"t": s, "joints": 63 floats (mm, 0.1 mm), "status"}."""
        joints = np.round(np.asarray(self.joints_mm, np.float64), JOINT_DECIMALS)
        return {
            "t": float(self.time_s),
            "joints": joints.reshape(-1).tolist(),
            "status": self.status,
        }
