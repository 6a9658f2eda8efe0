"""MediaPipe-like noisy hand landmarks, as a webcam pipeline would report them.

Model: true joints (mm, wrist origin) -> metres, centred on the mean of the 21 joints
(MediaPipe world landmarks are centred roughly on the hand), plus independent gaussian
noise per joint (a few mm across the image plane, more along depth, which a monocular
camera judges worst). A frame fails detection with a small probability: its landmarks
are NaN and its score is low. Noise for a frame depends only on (seed, frame time), so
asking for the same times again returns the same landmarks.
"""

from __future__ import annotations

import numpy as np

FAILED_SCORE_RANGE = (0.0, 0.3)
DETECTED_SCORE_RANGE = (0.8, 0.99)


def noisy_landmarks(
    joints_mm: np.ndarray,
    times_s: np.ndarray,
    seed: int,
    noise_mm: float = 3.0,
    depth_noise_mm: float = 8.0,
    failure_probability: float = 0.03,
) -> tuple[np.ndarray, np.ndarray]:
    """(m, 21, 3) joints in mm at `times_s` (m,) -> landmarks (m, 21, 3) float32 in
    metres (NaN where detection failed) and detection score (m,) float32 in [0, 1]."""
    centred_m = (joints_mm - joints_mm.mean(axis=-2, keepdims=True)) / 1000.0
    noise_sd_m = np.array([noise_mm, noise_mm, depth_noise_mm]) / 1000.0
    landmarks = np.empty(centred_m.shape, dtype=np.float32)
    score = np.empty(len(times_s), dtype=np.float32)
    for frame, time_s in enumerate(np.asarray(times_s, dtype=np.float64)):
        rng = np.random.default_rng([seed, 303, int(round(time_s * 1e6)) % (1 << 62)])
        failed = rng.random() < failure_probability
        score_range = FAILED_SCORE_RANGE if failed else DETECTED_SCORE_RANGE
        score[frame] = rng.uniform(*score_range)
        jitter = rng.standard_normal((21, 3)) * noise_sd_m
        landmarks[frame] = np.nan if failed else centred_m[frame] + jitter
    return landmarks, score
