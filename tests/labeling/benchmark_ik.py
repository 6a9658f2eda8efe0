"""Print IK speed and accuracy on simulated landmarks (measures, asserts nothing).

Run: PYTHONPATH=. .venv/bin/python tests/labeling/benchmark_ik.py
"""

import time

import numpy as np
import torch

from labeling.alignment import apply, umeyama
from labeling.ik import IKConfig, StreamingIK, fit_sequence
from recorder.simulation import ArmbandSimulator, SimulatorConfig

BATCH_FRAMES = 3000
STREAM_FRAMES = 600


def aligned_error_mm(points_mm: np.ndarray, truth_mm: np.ndarray) -> float:
    points, truth = torch.tensor(points_mm), torch.tensor(truth_mm)
    return float((apply(umeyama(points, truth), points) - truth).norm(dim=-1).mean())


def main() -> None:
    sim = ArmbandSimulator(SimulatorConfig(seed=1))
    times = sim.camera_times(0.0, BATCH_FRAMES / sim.config.camera_fps)
    truth_mm = sim.hand_state(times)["joints"].astype(np.float64)
    landmarks_m, scores = sim.camera_landmarks(times)
    seen = np.isfinite(landmarks_m).all((1, 2))
    raw = aligned_error_mm(landmarks_m[seen].astype(np.float64) * 1000, truth_mm[seen])
    config = IKConfig()
    fit_sequence(landmarks_m[:50], scores[:50], config)  # warm-up
    start = time.perf_counter()
    fit = fit_sequence(landmarks_m, scores, config)
    frames_per_s = len(landmarks_m) / (time.perf_counter() - start)
    ik = aligned_error_mm(fit.joints_mm[seen].astype(np.float64), truth_mm[seen])
    print(f"batched: {frames_per_s:.0f} frames/s on {torch.get_num_threads()} threads")
    print(f"  residual {np.nanmean(fit.ik_error_mm):.2f} mm, true error {ik:.2f} mm,")
    print(f"  raw landmark error {raw:.2f} mm, valid {fit.label_valid.mean():.3f}")
    torch.set_num_threads(1)
    streaming = StreamingIK(config)
    durations_ms, fits = [], []
    for frame in range(STREAM_FRAMES):
        start = time.perf_counter()
        fits.append(streaming.fit_frame(landmarks_m[frame], scores[frame]))
        durations_ms.append(1000 * (time.perf_counter() - start))
    joints = np.stack([f.joints_mm for f in fits]).astype(np.float64)
    window = seen[:STREAM_FRAMES]
    true_error = aligned_error_mm(joints[window], truth_mm[:STREAM_FRAMES][window])
    residual = np.nanmean([f.residual_mm for f in fits])
    p50, p95 = np.percentile(durations_ms[1:], [50, 95])
    print(f"streaming: {p50:.2f} ms/frame p50, {p95:.2f} ms p95 (1 thread)")
    print(f"  residual {residual:.2f} mm, true error {true_error:.2f} mm")


if __name__ == "__main__":
    main()
