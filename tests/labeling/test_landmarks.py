"""MediaPipe hand landmark detectors on real webcam photos from the shared data."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from labeling.landmarks import (
    HandDetection,
    MediaPipeTasksDetector,
    open_detector,
    read_rgb_image,
    write_hand_landmarker_task,
)
from labeling.pbtxt import read_landmarks_pbtxt
from tests.labeling.conftest import HANDS_DIR, require_hands_dir

SHARED_DATA = HANDS_DIR.parent
IMAGES_DIR = HANDS_DIR / "images"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Unmirrored (its printed timestamp reads left to right): a man makes the "call"
# gesture with his LEFT hand, on the right side of the picture.
LEFT_HAND_PHOTO = IMAGES_DIR / "call" / "044768ad-1709-44ba-b041-c2f8cbe4c166.jpg"
WRIST, THUMB_TIP, INDEX_MCP, MIDDLE_MCP, PINKY_MCP = 0, 4, 5, 9, 17
CURLED_TIPS = {"call": (12, 16), "four": (THUMB_TIP,)}


@pytest.fixture(autouse=True)
def shared_photos():
    require_hands_dir()


def photo_paths() -> list[Path]:
    return sorted(IMAGES_DIR.glob("*/*.jpg"))


@pytest.fixture(scope="module")
def legacy_detections() -> dict[Path, HandDetection | None]:
    pytest.importorskip("mediapipe")
    detector = open_detector("mediapipe")
    detections, elapsed_s = {}, 0.0
    try:
        for path in photo_paths():
            rgb = read_rgb_image(path)
            started = time.perf_counter()
            detections[path] = detector.detect(rgb)
            elapsed_s += time.perf_counter() - started
    finally:
        detector.close()
    ms_per_frame = 1000 * elapsed_s / len(detections)
    print(f"\nlegacy MediaPipe Hands: {ms_per_frame:.1f} ms/frame on {len(detections)}")
    return detections


@pytest.fixture(scope="module")
def task_path(tmp_path_factory) -> Path:
    pytest.importorskip("mediapipe")
    return write_hand_landmarker_task(tmp_path_factory.mktemp("models") / "hand.task")


@pytest.fixture(scope="module")
def tasks_detections(task_path) -> dict[Path, HandDetection | None]:
    detector = open_detector("mediapipe-tasks", model_path=task_path)
    try:
        return {path: detector.detect(read_rgb_image(path)) for path in photo_paths()}
    finally:
        detector.close()


def palm_side_depth_m(world_landmarks_m: np.ndarray, tip: int) -> float:
    """Signed distance of a fingertip from the wrist along index-MCP x pinky-MCP.
    On a right hand that normal points out of the palm, so a curled fingertip gives
    a positive value; on a left hand, negative (3D chirality, label-free)."""
    wrist = world_landmarks_m[WRIST]
    normal = np.cross(
        world_landmarks_m[INDEX_MCP] - wrist, world_landmarks_m[PINKY_MCP] - wrist
    )
    return float(
        np.dot(world_landmarks_m[tip] - wrist, normal / np.linalg.norm(normal))
    )


def test_the_shared_data_path_resolves_beside_the_repo():
    assert SHARED_DATA.parent.parent == REPO_ROOT.parent
    assert len(photo_paths()) >= 10


def test_it_finds_a_hand_in_most_photos(legacy_detections):
    found = [d for d in legacy_detections.values() if d is not None]
    print(f"detected {len(found)} of {len(legacy_detections)} photos")
    assert len(found) >= 0.7 * len(legacy_detections)
    for detection in found:
        assert detection.image_landmarks.shape == (21, 3)
        assert detection.world_landmarks_m.shape == (21, 3)
        assert np.isfinite(detection.image_landmarks).all()
        assert np.isfinite(detection.world_landmarks_m).all()
        assert detection.handedness in ("left", "right")
        assert 0.5 <= detection.score <= 1.0


def test_landmarks_lie_in_the_image_and_world_landmarks_are_hand_sized(
    legacy_detections,
):
    found = [d for d in legacy_detections.values() if d is not None]
    palm_lengths_m = [
        np.linalg.norm(d.world_landmarks_m[MIDDLE_MCP] - d.world_landmarks_m[WRIST])
        for d in found
    ]
    # Wrist to middle MCP: ~9 cm on adults; MediaPipe's metric scale is a guess.
    assert all(0.05 <= length <= 0.13 for length in palm_lengths_m), palm_lengths_m
    assert 0.07 <= np.median(palm_lengths_m) <= 0.11
    for detection in found:
        assert (detection.image_landmarks[:, :2] > -0.05).all()
        assert (detection.image_landmarks[:, :2] < 1.05).all()
        assert np.abs(detection.world_landmarks_m).max() < 0.25


def test_handedness_is_the_persons_actual_hand_in_an_unmirrored_photo(
    legacy_detections, tasks_detections
):
    assert legacy_detections[LEFT_HAND_PHOTO].handedness == "left"
    assert tasks_detections[LEFT_HAND_PHOTO].handedness == "left"


def test_handedness_agrees_with_the_3d_chirality_of_curled_fingers(legacy_detections):
    checked = 0
    for path, detection in legacy_detections.items():
        if detection is None:
            continue
        depths_m = [
            palm_side_depth_m(detection.world_landmarks_m, tip)
            for tip in CURLED_TIPS[path.parent.name]
        ]
        chirality = "right" if np.mean(depths_m) > 0 else "left"
        assert chirality == detection.handedness, path.name
        checked += 1
    assert checked >= 10


def test_mediapipes_own_right_hand_files_have_right_hand_chirality():
    for path in sorted(HANDS_DIR.glob("*_landmarks.pbtxt")):
        recorded = read_landmarks_pbtxt(path)
        curled = [8, 12, 16, 20] if path.name.startswith("thumb_up") else [16, 20]
        depths_m = [palm_side_depth_m(recorded.world_landmarks_m, t) for t in curled]
        assert recorded.handedness == "right"
        assert np.mean(depths_m) > 0, path.name


def test_tasks_and_legacy_find_the_same_hand(legacy_detections, tasks_detections):
    median_errors_px = []
    for path, legacy in legacy_detections.items():
        tasks = tasks_detections[path]
        assert (legacy is None) == (tasks is None), path.name
        if legacy is None:
            continue
        height, width = read_rgb_image(path).shape[:2]
        offsets_px = (legacy.image_landmarks - tasks.image_landmarks)[:, :2] * (
            width,
            height,
        )
        median_errors_px.append(np.median(np.linalg.norm(offsets_px, axis=1)))
        assert legacy.handedness == tasks.handedness, path.name
    assert max(median_errors_px) < 10.0, median_errors_px
    assert np.median(median_errors_px) < 3.0, median_errors_px


def test_tasks_video_mode_tracks_a_repeated_frame(task_path):
    rgb = read_rgb_image(LEFT_HAND_PHOTO)
    detector = open_detector("mediapipe-tasks", model_path=task_path, video=True)
    try:
        detections = [detector.detect(rgb) for _ in range(3)]
    finally:
        detector.close()
    assert all(d is not None and d.handedness == "left" for d in detections)


def test_it_rejects_frames_that_are_not_uint8_rgb():
    detector = open_detector("mediapipe")
    try:
        with pytest.raises(TypeError, match="uint8"):
            detector.detect(np.zeros((64, 64, 3), np.float32))
        with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
            detector.detect(np.zeros((64, 64), np.uint8))
        assert detector.detect(np.zeros((64, 64, 3), np.uint8)) is None
    finally:
        detector.close()


def test_a_missing_model_file_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="model not found"):
        MediaPipeTasksDetector(tmp_path / "absent.task")
    with pytest.raises(ValueError, match="needs model_path"):
        open_detector("mediapipe-tasks")
    with pytest.raises(ValueError, match="unknown detector"):
        open_detector("openpose")


def test_cli_detect_prints_json_lines_and_saves_nan_for_misses(tmp_path):
    out_path = tmp_path / "four.npz"
    completed = subprocess.run(
        [sys.executable, "-m", "labeling", "detect", str(IMAGES_DIR / "four")]
        + ["--out", str(out_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [json.loads(line) for line in completed.stdout.splitlines()]
    per_image, summary = lines[:-1], lines[-1]
    image_count = len(list((IMAGES_DIR / "four").glob("*.jpg")))
    assert len(per_image) == image_count
    assert summary == {
        "images": image_count,
        "detected": sum(line["detected"] for line in per_image),
    }
    assert summary["detected"] >= 0.7 * image_count
    for line in per_image:
        assert set(line) == {"image", "detected", "handedness", "score"}
        assert line["handedness"] in (
            ("left", "right") if line["detected"] else (None,)
        )

    saved = np.load(out_path)
    detected = saved["detected"]
    assert saved["world_landmarks_m"].shape == (image_count, 21, 3)
    assert detected.tolist() == [line["detected"] for line in per_image]
    assert np.isfinite(saved["world_landmarks_m"][detected]).all()
    assert np.isnan(saved["world_landmarks_m"][~detected]).all()
    assert np.isnan(saved["image_landmarks"][~detected]).all()
    assert np.isnan(saved["scores"][~detected]).all()
    assert saved["handedness"].tolist() == [
        line["handedness"] or "" for line in per_image
    ]
    assert (~detected).any()  # the folder holds photos MediaPipe misses


def test_cli_detect_reports_a_missing_path(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "labeling", "detect", str(tmp_path / "nothing")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert "no such image or directory" in completed.stderr
