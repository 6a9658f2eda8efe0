import json

import numpy as np
import pytest

from training.preprocessing import (
    CausalFilter,
    FilterConfig,
    Normalization,
    band_edges_hz,
    design_sos,
    filter_emg,
)

RATE_HZ = 500.0


def sine(frequency_hz: float, seconds: float = 4.0, rate_hz: float = RATE_HZ):
    times_s = np.arange(int(seconds * rate_hz)) / rate_hz
    return np.sin(2 * np.pi * frequency_hz * times_s)[:, None] * 100.0  # (n, 1) µV


def steady_rms(frequency_hz: float, config=None, rate_hz: float = RATE_HZ) -> float:
    """RMS of a 100 µV-amplitude sine after filtering, past the first second."""
    filtered = filter_emg(sine(frequency_hz, rate_hz=rate_hz), rate_hz,
                          config or FilterConfig())  # fmt: skip
    return float(np.sqrt(np.mean(filtered[int(rate_hz) :] ** 2)))


def test_band_pass_keeps_100_hz_and_attenuates_5_hz_and_240_hz():
    passed = steady_rms(100.0)
    assert passed == pytest.approx(100 / np.sqrt(2), rel=0.02)
    assert steady_rms(5.0) < 0.01 * passed
    assert steady_rms(240.0) < 0.05 * passed


def test_notch_removes_mains_and_can_be_moved_or_switched_off():
    passed = steady_rms(100.0)
    assert steady_rms(50.0) < 0.01 * passed
    assert steady_rms(60.0) > 0.9 * passed
    assert steady_rms(60.0, FilterConfig(notch_hz=60.0)) < 0.01 * passed
    assert steady_rms(50.0, FilterConfig(notch_hz=None)) > 0.9 * passed


def test_high_edge_is_clamped_below_nyquist_at_500_hz_only():
    assert band_edges_hz(FilterConfig(), 500.0) == (20.0, 225.0)
    assert band_edges_hz(FilterConfig(), 2000.0) == (20.0, 450.0)
    # At 2 kHz (emg2pose) 240 Hz lies inside the band.
    assert steady_rms(240.0, rate_hz=2000.0) > 0.9 * steady_rms(100.0, rate_hz=2000.0)


@pytest.mark.parametrize(
    "config, rate_hz, words",
    [
        (FilterConfig(), 0.0, "sampling rate"),
        (FilterConfig(), float("nan"), "sampling rate"),
        (FilterConfig(band_low_hz=300.0), RATE_HZ, "band edges"),
        (FilterConfig(band_low_hz=0.0), RATE_HZ, "band edges"),
        (FilterConfig(notch_hz=260.0), RATE_HZ, "notch"),
        (FilterConfig(order=0), RATE_HZ, "order"),
    ],
)
def test_impossible_filters_say_what_is_wrong(config, rate_hz, words):
    with pytest.raises(ValueError, match=words):
        design_sos(config, rate_hz)


def test_chunked_streaming_equals_one_offline_pass():
    rng = np.random.default_rng(0)
    emg = rng.normal(0, 50, (3000, 8)) + rng.normal(0, 500, 8)  # with DC offsets
    offline = filter_emg(emg, RATE_HZ, FilterConfig())
    live = CausalFilter(design_sos(FilterConfig(), RATE_HZ), num_channels=8)
    cuts = np.sort(rng.choice(np.arange(1, 3000), size=40, replace=False))
    chunks = [live.process(chunk) for chunk in np.split(emg, cuts)]
    streamed = np.concatenate(chunks)
    assert streamed.dtype == np.float32 and streamed.shape == (3000, 8)
    np.testing.assert_allclose(streamed, offline, rtol=0, atol=1e-3)


def test_filter_is_causal():
    emg = np.random.default_rng(1).normal(0, 50, (1000, 2))
    changed = emg.copy()
    changed[600:] += 1000.0
    before = filter_emg(emg, RATE_HZ, FilterConfig())[:600]
    np.testing.assert_array_equal(
        before, filter_emg(changed, RATE_HZ, FilterConfig())[:600]
    )


def test_a_dc_offset_gives_no_start_up_transient_and_reset_starts_afresh():
    emg = np.full((500, 2), 3000.0) + sine(100.0, seconds=1.0)
    live = CausalFilter(design_sos(FilterConfig(), RATE_HZ), num_channels=2)
    first = live.process(emg)
    assert np.abs(first).max() < 150.0  # the 100 µV sine, not a 3 mV step
    live.reset()
    np.testing.assert_array_equal(live.process(emg), first)


def test_normalization_gives_unit_channels_and_survives_a_flat_channel():
    rng = np.random.default_rng(2)
    parts = [rng.normal(5.0, [10.0, 40.0, 0.0], (400, 3)) for _ in range(2)]
    normalization = Normalization.fit(parts)
    normalized = normalization.apply(np.concatenate(parts))
    assert normalized.dtype == np.float32 and np.isfinite(normalized).all()
    np.testing.assert_allclose(normalized[:, :2].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(normalized[:, :2].std(0), 1.0, rtol=1e-4)
    assert np.all(normalized[:, 2] == 0.0)


def test_normalization_round_trips_through_json():
    normalization = Normalization.fit([np.random.default_rng(3).normal(0, 9, (50, 4))])
    restored = Normalization.from_dict(json.loads(json.dumps(normalization.as_dict())))
    np.testing.assert_array_equal(restored.mean, normalization.mean)
    np.testing.assert_array_equal(restored.std, normalization.std)


def test_normalization_rejects_mismatched_input():
    normalization = Normalization.fit([np.ones((10, 4))])
    with pytest.raises(ValueError, match="4 channels"):
        normalization.apply(np.ones((10, 8)))
    with pytest.raises(ValueError, match="no EMG"):
        Normalization.fit([])
    with pytest.raises(ValueError, match="positive"):
        Normalization.from_dict({"mean": [0.0, 0.0], "std": [1.0, 0.0]})
