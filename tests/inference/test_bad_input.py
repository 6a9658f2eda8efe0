"""Unusable input gets a clear error, or held poses and a clean recovery."""

import numpy as np
import pytest

from inference import InferenceInputError, LivePredictor
from tests.inference.streams import (
    SAMPLING_RATE_HZ,
    START_TIME_S,
    realtime_chunks,
    sample_of,
    simulated_emg,
    stream,
    untrained_checkpoint,
)


@pytest.fixture(scope="module")
def predictor(tcn_checkpoint):
    return LivePredictor.from_checkpoint(tcn_checkpoint)


def test_a_checkpoint_of_another_channel_count_names_both(tmp_path):
    checkpoint = untrained_checkpoint(tmp_path / "16.pt", "v5", num_channels=16)
    predictor = LivePredictor.from_checkpoint(checkpoint)
    message = "model v5 expects 16 channels, the stream has 8"
    with pytest.raises(InferenceInputError, match=message):
        predictor.check_channels(8)
    with pytest.raises(InferenceInputError, match=message):
        predictor.push(simulated_emg(0.1), START_TIME_S)


@pytest.mark.parametrize(
    "emg, problem",
    [
        (np.zeros(8, np.float32), "2-D"),
        (np.zeros((4, 8, 1), np.float32), "2-D"),
        (np.zeros((4, 8), np.int16), "floating-point"),
        (np.zeros((4, 8), bool), "floating-point"),
        ([[0.0] * 8], "numpy array"),
    ],
)
def test_malformed_arrays_get_clear_errors(predictor, emg, problem):
    with pytest.raises(InferenceInputError, match=problem):
        predictor.push(emg, START_TIME_S)


def test_a_non_finite_time_is_refused(predictor):
    with pytest.raises(InferenceInputError, match="finite time"):
        predictor.push(np.zeros((4, 8), np.float32), float("nan"))


def test_an_empty_chunk_gives_nothing(predictor):
    assert predictor.push(np.zeros((0, 8), np.float32), START_TIME_S) == []


def test_a_nan_burst_holds_the_last_pose_then_recovers(tcn_checkpoint):
    emg = simulated_emg(4.0)
    burst = slice(1000, 1100)  # 0.2 s of a disconnected electrode
    emg[burst, 3] = np.nan
    emg[1050, 5] = np.inf
    predictor = LivePredictor.from_checkpoint(tcn_checkpoint)
    frames = stream(predictor, emg, realtime_chunks(2000))
    statuses = {sample_of(frame): frame.status for frame in frames}
    last_good = max(end for end, status in statuses.items() if end < burst.start)
    held = [frame for frame in frames if frame.status == "held"]
    # during the burst and until a fresh window has filled (317 samples after it)
    assert min(sample_of(f) for f in held) == pytest.approx(burst.start, abs=10)
    assert max(sample_of(f) for f in held) < burst.stop + 317
    last_good_pose = next(f for f in frames if sample_of(f) == last_good).joints_mm
    for frame in held:
        np.testing.assert_array_equal(frame.joints_mm, last_good_pose)
    assert statuses[max(statuses)] in ("ok", "rest")
    assert all(np.isfinite(frame.joints_mm).all() for frame in frames)


def test_after_a_burst_it_equals_a_fresh_stream(tcn_checkpoint):
    """The filter restarts cleanly: no trace of the burst in later poses."""
    emg = simulated_emg(3.0)
    emg[500:520] = np.nan
    recovered = stream(LivePredictor.from_checkpoint(tcn_checkpoint), emg,
                       [(0, 400), (400, 600), (600, len(emg))])  # fmt: skip
    after = [frame for frame in recovered if frame.status != "held" and
             sample_of(frame) > 520]  # fmt: skip
    fresh_start_s = START_TIME_S + 520 / SAMPLING_RATE_HZ
    fresh = stream(LivePredictor.from_checkpoint(tcn_checkpoint), emg[520:],
                   [(0, len(emg) - 520)], start_time_s=fresh_start_s)  # fmt: skip
    assert len(after) > 50
    fresh_by_sample = {sample_of(f, fresh_start_s): f.joints_mm for f in fresh}
    for frame in after:
        expected = fresh_by_sample[sample_of(frame) - 520]
        np.testing.assert_allclose(frame.joints_mm, expected, atol=1e-3)
