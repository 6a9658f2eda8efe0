"""Streaming output equals offline evaluation, at the promised rate and times."""

import numpy as np
import pytest
import torch

from inference import LivePredictor, PoseFrame
from tests.inference.streams import (
    SAMPLING_RATE_HZ,
    random_chunks,
    sample_of,
    simulated_emg,
    stream,
    untrained_checkpoint,
)
from training.checkpoint import load_model
from training.preprocessing import filter_emg

SMALL = {
    "tcn": {"filters": 16, "hidden": 32},
    "v4": {"conv_channels": (16, 32), "lstm_hidden": 32},
    "v5": {"conv_channels": (16, 32), "lstm_hidden": 32},
    "vemg2pose": {},
    "neuropose": {},
    "tcn-short-window": {"window_samples": 120},  # zero-padded: a window model
}


@pytest.fixture(scope="module")
def emg():
    return simulated_emg(4.0)


def offline_joints(checkpoint, emg: np.ndarray, ends: list[int]) -> np.ndarray:
    """The model run on windows of the whole filtered, normalized signal."""
    loaded = load_model(checkpoint)
    filtered = filter_emg(emg, SAMPLING_RATE_HZ, loaded.filter_config)
    normalized = loaded.normalization.apply(filtered)
    windows = [normalized[end + 1 - loaded.window_samples : end + 1] for end in ends]
    with torch.no_grad():
        return loaded.model(torch.from_numpy(np.stack(windows)))["joints"].numpy()


def assert_matches_offline(checkpoint, emg, frames):
    ends = [sample_of(frame) for frame in frames]
    streamed = np.stack([frame.joints_mm for frame in frames])
    expected = offline_joints(checkpoint, emg, ends)
    np.testing.assert_allclose(streamed, expected, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("name", list(SMALL))
def test_streamed_poses_equal_offline_windows(name, emg, tmp_path):
    model = name.split("-")[0]
    checkpoint = untrained_checkpoint(tmp_path / "m.pt", model, **SMALL[name])
    predictor = LivePredictor.from_checkpoint(checkpoint)
    frames = stream(predictor, emg, random_chunks(len(emg), np.random.default_rng(1)))
    assert len(frames) > 100
    assert_matches_offline(checkpoint, emg, frames)


@pytest.mark.parametrize("fixture", ["tcn_checkpoint", "v5_checkpoint"])
def test_trained_checkpoints_stream_as_they_evaluate(fixture, request, emg):
    checkpoint = request.getfixturevalue(fixture)
    predictor = LivePredictor.from_checkpoint(checkpoint)
    frames = stream(predictor, emg, random_chunks(len(emg), np.random.default_rng(2)))
    assert_matches_offline(checkpoint, emg, frames)


def test_chunk_sizes_do_not_change_the_output(tcn_checkpoint, emg):
    """Filter state and caches carry across chunks: no edge artifacts."""
    whole = stream(LivePredictor.from_checkpoint(tcn_checkpoint), emg, [(0, len(emg))])
    for seed, largest in [(3, 5), (4, 200)]:
        chunks = random_chunks(len(emg), np.random.default_rng(seed), largest)
        chunked = stream(LivePredictor.from_checkpoint(tcn_checkpoint), emg, chunks)
        assert [sample_of(frame) for frame in chunked] == [sample_of(f) for f in whole]
        np.testing.assert_allclose(
            np.stack([frame.joints_mm for frame in chunked]),
            np.stack([frame.joints_mm for frame in whole]),
            atol=1e-3,
        )


def test_it_describes_its_model(tcn_checkpoint):
    predictor = LivePredictor.from_checkpoint(tcn_checkpoint)
    assert predictor.model_name == "tcn"
    assert predictor.num_channels == 8
    assert predictor.sampling_rate_hz == SAMPLING_RATE_HZ


def test_window_models_emit_at_the_output_rate(v5_checkpoint, emg):
    predictor = LivePredictor.from_checkpoint(v5_checkpoint, output_rate_hz=60.0)
    frames = stream(predictor, emg, random_chunks(len(emg), np.random.default_rng(5)))
    gaps_s = np.diff([frame.time_s for frame in frames])
    # each tick takes the newest sample at or before it: 2 ms resolution
    assert np.all(np.abs(gaps_s - 1 / 60) <= 1 / SAMPLING_RATE_HZ + 1e-6)
    warm_up_s = 50 / SAMPLING_RATE_HZ
    assert len(frames) == pytest.approx((4.0 - warm_up_s) * 60, abs=2)


@pytest.mark.parametrize("rate_hz, expected_hz", [(60.0, 50.0), (30.0, 30.0)])
def test_tcn_emits_each_frame_at_most_once(tcn_checkpoint, emg, rate_hz, expected_hz):
    """The tcn's native rate is 50 Hz: it emits at min(output rate, 50 Hz)."""
    predictor = LivePredictor.from_checkpoint(tcn_checkpoint, output_rate_hz=rate_hz)
    frames = stream(predictor, emg, random_chunks(len(emg), np.random.default_rng(6)))
    ends = [sample_of(frame) for frame in frames]
    assert len(set(ends)) == len(ends)
    assert all((end - 16) % 10 == 0 for end in ends)  # frame ends
    streamed_s = 4.0 - 317 / SAMPLING_RATE_HZ
    assert len(frames) == pytest.approx(streamed_s * expected_hz, abs=2)


def test_no_pose_before_the_first_full_window(tcn_checkpoint, emg):
    predictor = LivePredictor.from_checkpoint(tcn_checkpoint)
    assert stream(predictor, emg[:316], [(0, 316)]) == []
    frames = predictor.push(emg[316:320], 1_760_000_000.0 + 316 / SAMPLING_RATE_HZ)
    assert [sample_of(frame) for frame in frames] == [316]


def test_frames_carry_the_update_cost_and_serialize(tcn_checkpoint, emg):
    frames = stream(LivePredictor.from_checkpoint(tcn_checkpoint), emg, [(0, 400)])
    assert all(frame.update_ms > 0 for frame in frames)
    message = frames[-1].to_message()
    assert set(message) == {"t", "joints", "status"}
    assert len(message["joints"]) == 63
    assert all(round(value, 1) == value for value in message["joints"])


def test_a_message_rounds_joints_to_a_tenth_of_a_millimetre():
    joints = np.full((21, 3), 12.345, np.float32)
    message = PoseFrame(5.0, joints, "ok", 0.3).to_message()
    assert message == {"t": 5.0, "joints": [12.3] * 63, "status": "ok"}


def test_reset_starts_a_fresh_stream(tcn_checkpoint, emg):
    predictor = LivePredictor.from_checkpoint(tcn_checkpoint)
    first = stream(predictor, emg, [(0, 800)])
    predictor.reset()
    again = stream(predictor, emg, [(0, 800)], start_time_s=2_000_000_000.0)
    np.testing.assert_allclose(
        np.stack([f.joints_mm for f in again]), np.stack([f.joints_mm for f in first])
    )
