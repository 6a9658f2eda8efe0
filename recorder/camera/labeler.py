"""One camera frame -> one label frame: MediaPipe landmarks, then streaming IK.

A frame without a hand keeps NaN landmarks, pose, joints and ik_error, and is never
label_valid: missing is never zeros, and the IK's held pose is not a measurement.
"""

from __future__ import annotations

import math

import numpy as np

from recorder.camera.frames import NUM_JOINTS, POSE_SIZE
from recorder.camera.sources import CameraFrame


class FrameLabeler:
    """Labels frames in order (the IK warm-starts from the previous frame).

    `detector` (labeling.landmarks) defaults to MediaPipe's tracking detector,
    opened now with `detect_images` (its graph takes a second or two to start, which
    would back the first frames up), else at the first image: the simulated camera
    delivers landmarks already.
    """

    def __init__(
        self, detector=None, handedness: str = "right", detect_images: bool = False
    ):
        from labeling.hand_model import load_hand_model
        from labeling.ik import StreamingIK

        self.detector = detector
        model = load_hand_model(None, is_right=handedness != "left")
        self.ik = StreamingIK(hand_model=model)
        if detect_images and detector is None:
            self.detector = _open_tracking_detector()

    def label(self, frame: CameraFrame) -> dict:
        """The label fields of one frame (see LabelFrames), frame_time excluded."""
        landmarks_m, score = self._landmarks(frame)
        if not np.isfinite(landmarks_m).all():
            return _no_hand(score)
        fit = self.ik.fit_frame(landmarks_m, score)
        return {
            "landmarks": landmarks_m,
            "landmark_score": score,
            "pose": fit.pose,
            "joints": fit.joints_mm,
            "ik_error": fit.residual_mm,
            "label_valid": fit.valid,
        }

    def _landmarks(self, frame: CameraFrame) -> tuple[np.ndarray, float]:
        if frame.landmarks_m is not None:
            return np.asarray(frame.landmarks_m, np.float64), frame.score
        if frame.rgb is None:
            raise ValueError("a camera frame needs an image or landmarks")
        if self.detector is None:
            self.detector = _open_tracking_detector()
        detection = self.detector.detect(frame.rgb)
        if detection is None:
            return np.full((NUM_JOINTS, 3), np.nan), math.nan
        return detection.world_landmarks_m, detection.score

    def close(self) -> None:
        if self.detector is not None:
            self.detector.close()


def _no_hand(score: float) -> dict:
    return {
        "landmarks": np.full((NUM_JOINTS, 3), np.nan, np.float32),
        "landmark_score": score,
        "pose": np.full(POSE_SIZE, np.nan, np.float32),
        "joints": np.full((NUM_JOINTS, 3), np.nan, np.float32),
        "ik_error": math.nan,
        "label_valid": False,
    }


def _open_tracking_detector():
    from labeling.landmarks import open_detector

    # tracking between consecutive frames: faster than detecting each afresh
    return open_detector("mediapipe", video=True)
