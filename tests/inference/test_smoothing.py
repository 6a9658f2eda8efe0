"""One-Euro smoothing, and changing it while a stream runs."""

import numpy as np
import pytest

from inference import LivePredictor, OneEuroConfig
from inference.smoothing import OneEuroFilter
from tests.inference.streams import simulated_emg, stream


def jittery_signal(seconds=2.0, rate_hz=60.0, seed=0):
    rng = np.random.default_rng(seed)
    times_s = np.arange(0, seconds, 1 / rate_hz)
    return times_s, 50.0 + rng.normal(0, 2.0, (len(times_s), 3))


def test_a_still_value_passes_unchanged():
    smoother = OneEuroFilter(OneEuroConfig())
    outputs = [smoother(np.full(3, 7.0), t) for t in np.arange(0, 1, 1 / 60)]
    np.testing.assert_allclose(outputs[-1], 7.0)


def test_it_smooths_jitter_more_with_a_lower_cutoff():
    times_s, values = jittery_signal()
    spreads = []
    for min_cutoff_hz in (10.0, 0.5):
        smoother = OneEuroFilter(OneEuroConfig(min_cutoff_hz=min_cutoff_hz, beta=0.0))
        pairs = zip(times_s, values, strict=True)
        smoothed = np.stack([smoother(value, t) for t, value in pairs])
        spreads.append(np.std(np.diff(smoothed[10:], axis=0)))
    assert spreads[1] < spreads[0] < np.std(np.diff(values, axis=0))


def test_it_follows_fast_moves_with_a_higher_beta():
    times_s = np.arange(0, 1, 1 / 60)
    ramp = (times_s * 300.0)[:, None]  # 300 mm/s
    lags = []
    for beta in (0.0, 0.1):
        smoother = OneEuroFilter(OneEuroConfig(min_cutoff_hz=1.0, beta=beta))
        last = [smoother(v, t) for t, v in zip(times_s, ramp, strict=True)][-1]
        lags.append(float(ramp[-1, 0] - last[0]))
    assert lags[1] < lags[0] / 3


def test_impossible_settings_are_refused():
    with pytest.raises(ValueError, match="positive"):
        OneEuroConfig(min_cutoff_hz=0.0)
    with pytest.raises(ValueError, match="beta"):
        OneEuroConfig(beta=-1.0)


def test_smoothing_can_be_turned_on_changed_and_off_while_streaming(tcn_checkpoint):
    emg = simulated_emg(3.0)
    chunks = [(start, start + 17) for start in range(0, len(emg), 17)]
    raw = stream(LivePredictor.from_checkpoint(tcn_checkpoint), emg, chunks)
    predictor = LivePredictor.from_checkpoint(
        tcn_checkpoint, smoothing=OneEuroConfig(min_cutoff_hz=0.5, beta=0.0)
    )
    smoothed = stream(predictor, emg, chunks[:40])
    predictor.set_smoothing(OneEuroConfig(min_cutoff_hz=3.0, beta=0.01))
    smoothed += stream(predictor, emg, chunks[40:60])
    predictor.set_smoothing(None)
    smoothed += stream(predictor, emg, chunks[60:])
    assert len(smoothed) == len(raw)
    raw_joints = np.stack([frame.joints_mm for frame in raw])
    smoothed_joints = np.stack([frame.joints_mm for frame in smoothed])
    jitter = lambda joints: np.abs(np.diff(joints, axis=0)).mean()  # noqa: E731
    assert jitter(smoothed_joints[:20]) < jitter(raw_joints[:20])
    # once turned off, frames are the model's own output again
    np.testing.assert_allclose(smoothed_joints[-20:], raw_joints[-20:])
