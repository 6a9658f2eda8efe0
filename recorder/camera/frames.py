"""Label frames: what the camera path produces per frame, as arrays (numpy only).

The same arrays travel in label chunks (protocol.py), sit in the agent's spool and
end up in the session file's /labels group (session_file.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

NUM_JOINTS = 21
POSE_SIZE = 48  # MANO global orient + 15 finger axis-angles


@dataclass
class LabelFrames:
    """M consecutive camera frames with their live labels.

    frame_time: (M,) float64 s on the EMG clock (the board's timestamps).
    landmarks: (M, 21, 3) float32 MediaPipe world landmarks in metres; NaN where no
        hand was detected.
    landmark_score: (M,) float32 detection confidence; NaN when the detector found
        no hand and reported none.
    pose: (M, 48) float32 MANO axis-angles (rad); NaN where no hand was detected.
    joints: (M, 21, 3) float32 mm, wrist-relative, MediaPipe order; NaN likewise.
    ik_error: (M,) float32 mm, the IK fit's residual; NaN where no hand.
    label_valid: (M,) bool, score > 0.7 and ik_error < 25 mm (labeling.ik).
    """

    frame_time: np.ndarray
    landmarks: np.ndarray
    landmark_score: np.ndarray
    pose: np.ndarray
    joints: np.ndarray
    ik_error: np.ndarray
    label_valid: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_time)

    @classmethod
    def concatenate(cls, pieces: list[LabelFrames]) -> LabelFrames:
        return cls(
            *(np.concatenate([getattr(p, f.name) for p in pieces]) for f in fields(cls))
        )

    @classmethod
    def stack(cls, frames: list[dict]) -> LabelFrames:
        """From per-frame dicts holding one value of every field."""
        return cls(
            frame_time=np.array([f["frame_time"] for f in frames], np.float64),
            landmarks=np.array([f["landmarks"] for f in frames], np.float32),
            landmark_score=np.array([f["landmark_score"] for f in frames], np.float32),
            pose=np.array([f["pose"] for f in frames], np.float32),
            joints=np.array([f["joints"] for f in frames], np.float32),
            ik_error=np.array([f["ik_error"] for f in frames], np.float32),
            label_valid=np.array([f["label_valid"] for f in frames], np.bool_),
        )
