"""Per-channel signal quality on synthetic and simulated EMG."""

from __future__ import annotations

import numpy as np
import pytest

from recorder.quality import RecentSamples, channel_quality
from recorder.simulation import ArmbandSimulator, SimulatorConfig

RATE_HZ = 500.0


def band_limited_noise(
    n: int = 1000, channels: int = 1, seed: int = 0, rms_uv: float = 20.0
):
    """White noise kept between 20 and 200 Hz, like surface EMG."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal((n, channels)), axis=0)
    freqs = np.fft.rfftfreq(n, 1 / RATE_HZ)
    spectrum[(freqs < 20) | (freqs > 200)] = 0
    noise = np.fft.irfft(spectrum, n, axis=0)
    return (noise / noise.std(axis=0) * rms_uv).astype(np.float32)


def test_healthy_band_limited_noise_has_no_problem():
    (quality,) = channel_quality(band_limited_noise(), RATE_HZ)
    assert quality.problem == ""
    assert not quality.flat
    assert quality.clipped_fraction == 0.0
    assert quality.line_noise_ratio < 0.1
    assert quality.rms_uv == pytest.approx(20.0, rel=0.01)


def test_a_flat_channel_is_flat():
    emg = np.full((1000, 1), 123.0, np.float32)  # an offset, but no signal
    emg += np.random.default_rng(0).normal(0, 0.05, emg.shape).astype(np.float32)
    (quality,) = channel_quality(emg, RATE_HZ)
    assert quality.flat
    assert "flat" in quality.problem


def test_a_strong_mains_hum_is_flagged():
    t = np.arange(1000) / RATE_HZ
    emg = (200 * np.sin(2 * np.pi * 50 * t))[:, None] + band_limited_noise(rms_uv=10)
    (quality,) = channel_quality(emg, RATE_HZ)
    assert quality.line_noise_ratio > 0.5
    assert "mains" in quality.problem


def test_mains_hum_is_looked_for_at_the_configured_frequency():
    t = np.arange(1000) / RATE_HZ
    emg = (200 * np.sin(2 * np.pi * 60 * t))[:, None] + band_limited_noise(rms_uv=10)
    (at_50,) = channel_quality(emg, RATE_HZ, line_frequency_hz=50.0)
    (at_60,) = channel_quality(emg, RATE_HZ, line_frequency_hz=60.0)
    assert at_60.line_noise_ratio > 0.5 and "mains" in at_60.problem
    assert at_50.line_noise_ratio < 0.2 and at_50.problem == ""


def test_the_first_harmonic_of_mains_counts_as_hum():
    t = np.arange(1000) / RATE_HZ
    emg = (200 * np.sin(2 * np.pi * 100 * t))[:, None] + band_limited_noise(rms_uv=10)
    (quality,) = channel_quality(emg, RATE_HZ)
    assert quality.line_noise_ratio > 0.5


def test_a_clipped_channel_is_flagged():
    emg = band_limited_noise(rms_uv=3000)
    emg = np.clip(emg, -6000, 6000)
    (quality,) = channel_quality(emg, RATE_HZ)
    assert quality.clipped_fraction > 0.01
    assert "clipping" in quality.problem


def test_each_channel_is_judged_on_its_own():
    emg = band_limited_noise(channels=3)
    emg[:, 1] = 0.0
    emg[::10, 2] = 6000.0
    problems = [q.problem for q in channel_quality(emg, RATE_HZ)]
    assert problems[0] == ""
    assert problems[1].startswith("flat")
    assert problems[2].startswith("clipping")


def test_as_dict_includes_the_problem():
    (quality,) = channel_quality(np.zeros((500, 1), np.float32), RATE_HZ)
    assert quality.as_dict() == {
        "rms_uv": 0.0,
        "line_noise_ratio": 0.0,
        "clipped_fraction": 0.0,
        "flat": True,
        "noisy": False,
        "noise_floor_uv": 0.0,
        "problem": quality.problem,
    }


def test_a_channel_far_louder_than_the_others_is_noisy():
    rng = np.random.default_rng(3)
    emg = rng.normal(0, 20, (500, 8)).astype(np.float32)
    emg[:, 5] *= 30
    quality = channel_quality(emg, RATE_HZ)
    assert [q.noisy for q in quality] == [c == 5 for c in range(8)]
    assert "noisy" in quality[5].problem


def first_simulator_with_bad_channel(kind: str) -> ArmbandSimulator:
    for seed in range(200):
        simulator = ArmbandSimulator(SimulatorConfig(seed=seed))
        if simulator.bad_channels and simulator.bad_channel_kind == kind:
            return simulator
    raise AssertionError(f"no seed below 200 gives a {kind} bad channel")


def test_the_simulated_flat_channel_is_flagged_and_the_others_are_not():
    simulator = first_simulator_with_bad_channel("flat")
    emg, _, _ = simulator.next_emg(1000)
    problems = [q.problem for q in channel_quality(emg, RATE_HZ)]
    (bad,) = simulator.bad_channels
    assert problems[bad].startswith("flat")
    assert sum(bool(p) for i, p in enumerate(problems) if i != bad) <= 1


def test_a_simulator_without_bad_channels_looks_healthy():
    simulator = ArmbandSimulator(SimulatorConfig(seed=0, bad_channel_probability=0.0))
    emg, _, _ = simulator.next_emg(1000)
    assert sum(bool(q.problem) for q in channel_quality(emg, RATE_HZ)) <= 1


def test_the_simulated_noisy_channel_is_flagged():
    simulator = first_simulator_with_bad_channel("noisy")
    emg, _, _ = simulator.next_emg(1000)
    (bad,) = simulator.bad_channels
    assert channel_quality(emg, RATE_HZ)[bad].problem != ""


# ---------------------------------------------------------------- RecentSamples


def numbered(start: int, count: int, channels: int = 2) -> np.ndarray:
    rows = np.arange(start, start + count, dtype=np.float32)
    return np.stack([rows + 1000 * c for c in range(channels)], axis=1)


def test_recent_samples_hold_what_arrived_until_full():
    recent = RecentSamples(num_channels=2, capacity=10)
    assert recent.latest().shape == (0, 2)
    recent.extend(numbered(0, 4))
    recent.extend(numbered(4, 3))
    np.testing.assert_array_equal(recent.latest(), numbered(0, 7))


@pytest.mark.parametrize(
    "pieces", [[4, 4, 4, 4, 4], [7, 7, 7], [3, 9, 1, 6, 2], [25], [9, 1, 10, 3]]
)
def test_recent_samples_keep_the_last_n_in_order_across_wrap_around(pieces):
    recent = RecentSamples(num_channels=2, capacity=10)
    start = 0
    for count in pieces:
        recent.extend(numbered(start, count))
        start += count
        expected = numbered(max(0, start - 10), min(start, 10))
        np.testing.assert_array_equal(recent.latest(), expected)


def test_recent_samples_ignore_an_empty_extend():
    recent = RecentSamples(num_channels=2, capacity=5)
    recent.extend(numbered(0, 7))
    recent.extend(numbered(7, 0))
    np.testing.assert_array_equal(recent.latest(), numbered(2, 5))


def test_latest_is_a_copy():
    recent = RecentSamples(num_channels=2, capacity=4)
    recent.extend(numbered(0, 3))
    recent.latest()[:] = -1
    np.testing.assert_array_equal(recent.latest(), numbered(0, 3))


def test_the_noise_floor_ignores_a_burst_of_activity():
    quiet = band_limited_noise(rms_uv=5)
    burst = quiet.copy()
    burst[200:300] *= 40  # 0.2 s of strong contraction
    (quiet_quality,) = channel_quality(quiet, RATE_HZ)
    (burst_quality,) = channel_quality(burst, RATE_HZ)
    assert burst_quality.rms_uv > 5 * quiet_quality.rms_uv
    assert burst_quality.noise_floor_uv == pytest.approx(
        quiet_quality.noise_floor_uv, rel=0.05
    )
    assert 2 < quiet_quality.noise_floor_uv < 6
