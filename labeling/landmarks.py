"""Webcam hand landmark detection: RGB frame -> 21 MediaPipe landmarks.

Two backends share one small interface (`LandmarkDetector`):
- `MediaPipeHandsDetector`: the legacy `mp.solutions.hands` API with the full models
  bundled in mediapipe 0.10.21; works offline and needs no model file.
- `MediaPipeTasksDetector`: the Tasks `HandLandmarker`, from a `.task` bundle.
  `write_hand_landmarker_task` builds one offline from the bundled full models.

Handedness convention: `HandDetection.handedness` is the person's actual hand as seen
in an unmirrored camera frame (what the camera really captured; no selfie flip).
The legacy API assumes a mirrored selfie image and so reports the opposite label;
`MediaPipeHandsDetector` flips it. The Tasks API already reports the actual hand.
Evidence (tests/labeling/test_landmarks.py): on a photo whose printed timestamp reads
correctly (so it is unmirrored) the man raises his left hand; legacy says "Right",
Tasks says "Left". The 3D chirality of the world landmarks (curled fingertips on the
palm side of the index-MCP x pinky-MCP normal) agrees with the flipped label on every
detected test photo and with the "Right" of MediaPipe's own landmark files.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

NUM_LANDMARKS = 21
HANDEDNESS_VALUES = ("left", "right")
# Timestamp step for Tasks video mode when the caller gives none: 30 fps.
_VIDEO_FRAME_STEP_MS = 33


@dataclass(frozen=True)
class HandDetection:
    """One detected hand, in MediaPipe's 21-landmark order.

    image_landmarks: (21, 3) x, y normalized to [0, 1] by image width and height
        (x right, y down); z is relative depth with the wrist at 0, roughly the
        scale of x, smaller is closer to the camera.
    world_landmarks_m: (21, 3) metres, origin near the hand centre, same axis
        directions as the image (x right, y down, z away from the camera).
    handedness: "left" or "right", the person's actual hand in an unmirrored frame.
    score: handedness confidence in [0, 1].
    """

    image_landmarks: np.ndarray
    world_landmarks_m: np.ndarray
    handedness: str
    score: float


class LandmarkDetector(Protocol):
    def detect(self, rgb: np.ndarray) -> HandDetection | None:
        """Landmarks of the most prominent hand in an (H, W, 3) uint8 RGB frame, or
        None when no hand is found."""

    def close(self) -> None:
        """Release the underlying graph."""


def check_rgb_frame(rgb: np.ndarray) -> np.ndarray:
    """Return `rgb` as a C-contiguous (H, W, 3) uint8 array, or raise a clear error."""
    if not isinstance(rgb, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise TypeError(f"expected a uint8 RGB image, got dtype {rgb.dtype}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


def read_rgb_image(path: str | Path) -> np.ndarray:
    """Read an image file as an (H, W, 3) uint8 RGB array."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _landmark_array(landmarks) -> np.ndarray:
    """(21, 3) float64 from a sequence of objects with x, y, z."""
    return np.array([(point.x, point.y, point.z) for point in landmarks], np.float64)


def _mirrored(label: str) -> str:
    return {"left": "right", "right": "left"}[label.lower()]


def _mediapipe_modules_dir() -> Path:
    import mediapipe

    return Path(mediapipe.__file__).parent / "modules"


class MediaPipeHandsDetector:
    """The legacy `mp.solutions.hands` detector with the full models (offline).

    static_image_mode=True runs palm detection on every frame (photos);
    False tracks between consecutive video frames, which is faster.
    """

    def __init__(
        self,
        static_image_mode: bool = True,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        import mediapipe as mp

        self._hands = mp.solutions.hands.Hands(
            static_image_mode=static_image_mode,
            max_num_hands=1,
            model_complexity=1,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )

    def detect(self, rgb: np.ndarray) -> HandDetection | None:
        result = self._hands.process(check_rgb_frame(rgb))
        if not result.multi_hand_landmarks or not result.multi_hand_world_landmarks:
            return None
        category = result.multi_handedness[0].classification[0]
        return HandDetection(
            image_landmarks=_landmark_array(result.multi_hand_landmarks[0].landmark),
            world_landmarks_m=_landmark_array(
                result.multi_hand_world_landmarks[0].landmark
            ),
            # The legacy API labels hands as if the frame were a mirrored selfie.
            handedness=_mirrored(category.label),
            score=float(category.score),
        )

    def close(self) -> None:
        self._hands.close()


class MediaPipeTasksDetector:
    """The Tasks `HandLandmarker` from a `.task` bundle (see
    `write_hand_landmarker_task`). video=True uses VIDEO running mode, which tracks
    between frames and needs increasing timestamps."""

    def __init__(
        self,
        model_path: str | Path,
        video: bool = False,
        min_detection_confidence: float = 0.5,
    ) -> None:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(
                f"hand landmarker model not found: {model_path} "
                "(build one with labeling.landmarks.write_hand_landmarker_task)"
            )
        from mediapipe.tasks.python import BaseOptions, vision

        mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
        options = vision.HandLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)),
            running_mode=mode,
            num_hands=1,
            min_hand_detection_confidence=min_detection_confidence,
        )
        self._landmarker = vision.HandLandmarker.create_from_options(options)
        self._video = video
        self._last_timestamp_ms = -_VIDEO_FRAME_STEP_MS

    def detect(
        self, rgb: np.ndarray, timestamp_ms: int | None = None
    ) -> HandDetection | None:
        """timestamp_ms is used in video mode only; None means the previous + 33."""
        import mediapipe as mp

        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=check_rgb_frame(rgb))
        if self._video:
            if timestamp_ms is None:
                timestamp_ms = self._last_timestamp_ms + _VIDEO_FRAME_STEP_MS
            self._last_timestamp_ms = timestamp_ms
            result = self._landmarker.detect_for_video(image, timestamp_ms)
        else:
            result = self._landmarker.detect(image)
        if not result.hand_landmarks:
            return None
        category = result.handedness[0][0]
        return HandDetection(
            image_landmarks=_landmark_array(result.hand_landmarks[0]),
            world_landmarks_m=_landmark_array(result.hand_world_landmarks[0]),
            # Tasks already reports the actual hand of an unmirrored frame.
            handedness=category.category_name.lower(),
            score=float(category.score),
        )

    def close(self) -> None:
        self._landmarker.close()


def write_hand_landmarker_task(task_path: str | Path) -> Path:
    """Zip the installed mediapipe's *full* palm and landmark models into a Tasks
    `.task` bundle at `task_path` (the lite models lack the metadata Tasks needs)."""
    modules = _mediapipe_modules_dir()
    task_path = Path(task_path)
    task_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(task_path, "w") as bundle:
        bundle.write(
            modules / "palm_detection" / "palm_detection_full.tflite",
            "hand_detector.tflite",
        )
        bundle.write(
            modules / "hand_landmark" / "hand_landmark_full.tflite",
            "hand_landmarks_detector.tflite",
        )
    return task_path


def _open_mediapipe(model_path: str | Path | None, video: bool) -> LandmarkDetector:
    if model_path is not None:
        raise ValueError("the 'mediapipe' detector uses its bundled models")
    return MediaPipeHandsDetector(static_image_mode=not video)


def _open_mediapipe_tasks(
    model_path: str | Path | None, video: bool
) -> LandmarkDetector:
    if model_path is None:
        raise ValueError("the 'mediapipe-tasks' detector needs model_path (.task)")
    return MediaPipeTasksDetector(model_path, video=video)


DETECTOR_KINDS = {
    "mediapipe": _open_mediapipe,
    "mediapipe-tasks": _open_mediapipe_tasks,
}


def open_detector(
    kind: str = "mediapipe",
    model_path: str | Path | None = None,
    video: bool = False,
) -> LandmarkDetector:
    """A detector by name (see DETECTOR_KINDS); mediapipe is imported only here.
    video=True tracks across consecutive frames instead of detecting each afresh."""
    if kind not in DETECTOR_KINDS:
        raise ValueError(
            f"unknown detector {kind!r}; choose from {list(DETECTOR_KINDS)}"
        )
    return DETECTOR_KINDS[kind](model_path, video)
