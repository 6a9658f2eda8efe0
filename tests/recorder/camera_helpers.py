"""Helpers for the camera tests: a video made of real photos, and label frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from recorder.camera.frames import LabelFrames
from recorder.protocol import STREAM_LABELS, decode_chunk, peek_header
from recorder.spool import SpoolSession

VIDEO_SIZE = (640, 480)  # width, height
VIDEO_FPS = 30.0


def letterboxed(bgr: np.ndarray) -> np.ndarray:
    """The photo scaled into VIDEO_SIZE without distortion, black bars around."""
    width, height = VIDEO_SIZE
    scale = min(width / bgr.shape[1], height / bgr.shape[0])
    resized = cv2.resize(bgr, (int(bgr.shape[1] * scale), int(bgr.shape[0] * scale)))
    frame = np.zeros((height, width, 3), np.uint8)
    top = (height - resized.shape[0]) // 2
    left = (width - resized.shape[1]) // 2
    frame[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return frame


def write_photo_video(path: Path, photos: list[Path], blank_frames: int = 1) -> Path:
    """An mp4 at VIDEO_FPS: one frame per photo, then `blank_frames` black frames
    (a camera seeing no hand)."""
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, VIDEO_SIZE
    )
    for photo in photos:
        writer.write(letterboxed(cv2.imread(str(photo))))
    for _ in range(blank_frames):
        writer.write(np.zeros((VIDEO_SIZE[1], VIDEO_SIZE[0], 3), np.uint8))
    writer.release()
    return path


def spooled_labels(session: SpoolSession) -> LabelFrames | None:
    """Every label frame the session's spool holds, in order."""
    chunks = {}
    for record in session.log.records():
        _, stream, seq, _ = peek_header(record.frame)
        if stream == STREAM_LABELS:
            chunks.setdefault(seq, decode_chunk(record.frame).samples)
    if not chunks:
        return None
    assert sorted(chunks) == list(range(len(chunks))), "label seqs have a gap"
    return LabelFrames.concatenate([chunks[seq] for seq in sorted(chunks)])


def make_label_frames(n: int = 6, t0: float = 1_700_000_000.0, fps: float = 30.0):
    """n label frames at `fps`; frame 1 has no hand (NaN) and is not valid."""
    rng = np.random.default_rng(n)
    joints = rng.normal(0, 40, (n, 21, 3)).astype(np.float32)
    frames = LabelFrames(
        frame_time=t0 + np.arange(n) / fps,
        landmarks=(joints / 1000).astype(np.float32),
        landmark_score=np.full(n, 0.9, np.float32),
        pose=rng.normal(0, 0.3, (n, 48)).astype(np.float32),
        joints=joints,
        ik_error=np.full(n, 8.0, np.float32),
        label_valid=np.ones(n, bool),
    )
    if n > 1:
        for name in ("landmarks", "pose", "joints"):
            getattr(frames, name)[1] = np.nan
        frames.landmark_score[1] = np.nan
        frames.ik_error[1] = np.nan
        frames.label_valid[1] = False
    return frames
