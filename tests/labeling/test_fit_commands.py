"""`python -m labeling fit` and `bench`: file formats, bad input, the JSON lines."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from labeling.__main__ import main
from recorder.simulation import ArmbandSimulator, SimulatorConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
FIT_KEYS = {"frames", "mean_residual_mm", "median_residual_mm", "valid_fraction", "fps"}
BENCH_KEYS = {
    "batched_fps",
    "streaming_ms_p95",
    "residual_mm",
    "true_error_mm",
    "landmark_noise_mm",
}
SIMULATED_FRAMES = 30
MISSING_FRAME = 7


def last_json_line(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def run_labeling(capsys, *argv) -> tuple[int, dict | None, str]:
    """main(argv) -> exit status, the last stdout JSON line (if any), stderr."""
    status = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    line = last_json_line(captured.out) if captured.out.strip() else None
    return status, line, captured.err


@pytest.fixture(scope="module")
def simulated_landmarks_m() -> np.ndarray:
    """(30, 21, 3) metres from the simulator, one frame missing (NaN)."""
    simulator = ArmbandSimulator(SimulatorConfig(seed=3))
    times_s = simulator.camera_times(0.0, SIMULATED_FRAMES / 30.0)
    landmarks_m, _ = simulator.camera_landmarks(times_s)
    landmarks_m = landmarks_m.astype(np.float64)
    landmarks_m[MISSING_FRAME] = np.nan
    return landmarks_m


def test_fit_on_a_recorded_pbtxt_prints_a_small_residual(capsys, recorded_path):
    status, line, _ = run_labeling(capsys, "fit", "--landmarks", recorded_path)
    assert status == 0
    assert set(line) == FIT_KEYS
    assert line["frames"] == 1
    assert line["mean_residual_mm"] <= 7.0  # the target (seed: 9.71 mm)
    assert line["valid_fraction"] == 1.0


def write_json_frames(path: Path, landmarks_m: np.ndarray) -> None:
    frames = [
        None if np.isnan(frame).any() else frame.tolist() for frame in landmarks_m
    ]
    path.write_text(json.dumps(frames))


@pytest.mark.parametrize("suffix", [".npy", ".json"])
@pytest.mark.parametrize("mode", ["batched", "streaming"])
def test_fit_saves_labels_and_marks_the_missing_frame_invalid(
    capsys, tmp_path, simulated_landmarks_m, suffix, mode
):
    landmarks_path = tmp_path / f"landmarks{suffix}"
    if suffix == ".npy":
        np.save(landmarks_path, simulated_landmarks_m)
    else:
        write_json_frames(landmarks_path, simulated_landmarks_m)
    out_path = tmp_path / "fit.npz"
    status, line, _ = run_labeling(
        capsys, "fit", "--landmarks", landmarks_path, "--out", out_path, "--mode", mode
    )
    assert status == 0
    assert line["frames"] == SIMULATED_FRAMES
    assert line["mean_residual_mm"] < 15.0
    fit = np.load(out_path)
    assert fit["pose"].shape == (SIMULATED_FRAMES, 48)
    assert fit["joints_mm"].shape == (SIMULATED_FRAMES, 21, 3)
    assert fit["ik_error_mm"].shape == (SIMULATED_FRAMES,)
    assert fit["label_valid"].shape == (SIMULATED_FRAMES,)
    assert np.isnan(fit["ik_error_mm"][MISSING_FRAME])
    assert not fit["label_valid"][MISSING_FRAME]
    assert fit["label_valid"].sum() >= SIMULATED_FRAMES - 3


def write_bad_file(tmp_path: Path, name: str, content) -> Path:
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


BAD_INPUTS = {
    "wrong npy shape": ("bad.npy", np.zeros((4, 20, 3)), "(frames, 21, 3)"),
    "text npy": ("bad.npy", np.array([["a"] * 3] * 21)[None], "real numbers"),
    "garbage npy": ("bad.npy", "not an array", "not a numeric .npy"),
    "json not a list": ("bad.json", {"frames": []}, "JSON list of frames"),
    "json short frame": ("bad.json", [[[0.0, 0.0, 0.0]] * 20], "frame 0"),
    "json string": ("bad.json", [[[0.0, 0.0, 0.0]] * 20 + [[0, "x", 0]]], "'x'"),
    "json syntax": ("bad.json", "[[1, 2", "not valid JSON"),
    "all frames missing": ("bad.json", [None, None], "no hand was detected"),
    "unknown suffix": ("landmarks.csv", "0,0,0", "unknown landmark file type"),
    "broken pbtxt": ("bad.pbtxt", "world_landmarks { landmark {", "unbalanced"),
    "pbtxt without hand": ("bad.pbtxt", "landmarks { }", "not a hand landmark"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_landmark_files_exit_2_with_a_message(capsys, tmp_path, case):
    name, content, message = BAD_INPUTS[case]
    path = write_bad_file(tmp_path, name, content)
    status, line, error = run_labeling(capsys, "fit", "--landmarks", path)
    assert status == 2
    assert line is None
    assert message in error


def test_a_missing_file_exits_2_from_the_command_line(tmp_path):
    missing = tmp_path / "nowhere.npy"
    result = subprocess.run(
        [sys.executable, "-m", "labeling", "fit", "--landmarks", str(missing)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no such landmark file" in result.stderr
    assert result.stdout == ""


def test_bench_prints_sane_speed_and_accuracy(capsys):
    status, line, _ = run_labeling(capsys, "bench", "--frames", 200, "--seed", 2)
    assert status == 0
    assert BENCH_KEYS <= set(line)
    assert line["batched_fps"] > 0
    assert 0 < line["streaming_ms_p50"] <= line["streaming_ms_p95"]
    assert 0 < line["residual_mm"] < 15.0
    assert 0 < line["landmark_noise_mm"] < 20.0
    # The fit should not be further from the truth than the raw landmarks are.
    assert 0 < line["true_error_mm"] < line["landmark_noise_mm"]
    assert 0.8 <= line["valid_fraction"] <= 1.0
