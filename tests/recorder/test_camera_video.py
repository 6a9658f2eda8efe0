"""The agent's camera path on a video made of real webcam photos, through real
MediaPipe and the streaming IK: frames -> label chunks in the spool, and the saved
video that never leaves the laptop."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from recorder.camera.clock import ClockSync
from recorder.camera.labeler import FrameLabeler
from recorder.camera.sources import VideoFileSource
from recorder.camera.streamer import CameraStreamer
from recorder.camera.video import VideoSaver
from recorder.spool import Spool
from tests.labeling.conftest import require_hands_dir
from tests.recorder.camera_helpers import VIDEO_FPS, spooled_labels, write_photo_video

PHOTOS_PER_GESTURE = 3  # a handful of frames keeps MediaPipe's share short


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Run the camera thread once over the video (as fast as it decodes)."""
    pytest.importorskip("mediapipe")
    images = require_hands_dir() / "images"
    photos = [
        photo
        for gesture in ("call", "four")
        for photo in sorted((images / gesture).glob("*.jpg"))[:PHOTOS_PER_GESTURE]
    ]
    root = tmp_path_factory.mktemp("camera")
    video_path = write_photo_video(root / "hands.mp4", photos, blank_frames=1)
    session = Spool(root / "spool").open_session(5)
    clock = ClockSync()
    clock.observe(1_000.0, 1_000.0)  # the EMG clock is the host clock here
    source = VideoFileSource(video_path, realtime=False)
    saver = VideoSaver(root / "videos", session_id=5)
    camera = CameraStreamer(
        source, session, clock, lambda: None, FrameLabeler, video=saver
    )
    camera.start()
    camera.join(timeout=60)
    assert not camera.is_alive(), "the camera thread did not finish the video"
    return {
        "labels": spooled_labels(session),
        "camera": camera,
        "frames": len(photos) + 1,
        "saver": saver,
        "session": session,
    }


def test_every_frame_of_the_video_becomes_a_label_frame(recorded):
    labels = recorded["labels"]
    assert len(labels) == recorded["frames"] == recorded["camera"].frames_labeled
    assert np.allclose(np.diff(labels.frame_time), 1 / VIDEO_FPS, atol=1e-3)


def test_real_hands_get_landmarks_and_ik_labels(recorded):
    labels = recorded["labels"]
    detected = np.isfinite(labels.landmarks).all(axis=(1, 2))
    assert detected.sum() >= 3, "MediaPipe found too few hands in the photos"
    assert np.isfinite(labels.joints[detected]).all()
    assert (labels.ik_error[detected] < 60).all()
    assert labels.label_valid.sum() >= 1
    valid = labels.label_valid
    assert (labels.landmark_score[valid] > 0.7).all()
    assert (labels.ik_error[valid] < 25).all()
    # joints are wrist-relative mm: the wrist sits at the origin, fingers ~10 cm out
    assert np.allclose(labels.joints[valid][:, 0], 0, atol=1e-3)
    reach_mm = np.linalg.norm(labels.joints[valid], axis=-1).max(axis=1)
    assert ((reach_mm > 100) & (reach_mm < 250)).all()


def test_a_frame_without_a_hand_is_nan_and_never_valid(recorded):
    labels = recorded["labels"]
    blank = -1  # the black frame at the end
    for name in ("landmarks", "pose", "joints"):
        assert np.isnan(getattr(labels, name)[blank]).all(), name
    assert np.isnan(labels.ik_error[blank]) and np.isnan(labels.landmark_score[blank])
    assert not labels.label_valid[blank]


def test_the_camera_reports_the_end_of_the_video(recorded):
    status = recorded["camera"].status()
    assert status["state"] == "off"
    assert f"ended after {recorded['frames']} frames" in status["message"]


def test_save_video_keeps_every_frame_with_its_time_locally(recorded):
    saver = recorded["saver"]
    capture = cv2.VideoCapture(str(saver.video_path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames == recorded["frames"]
    with open(saver.times_path) as handle:
        rows = list(csv.DictReader(handle))
    times = [float(row["frame_time_s"]) for row in rows]
    assert np.allclose(times, recorded["labels"].frame_time, atol=1e-6)
    # nothing about the video is in the spool that goes to the server
    assert recorded["session"].log.path.stat().st_size < 20_000
