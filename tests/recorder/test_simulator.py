import time

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt, welch

from recorder.devices.simulated import SimulatedArmband
from recorder.simulation import ArmbandSimulator, SimulatorConfig
from recorder.simulation.gestures import GESTURES
from recorder.simulation.trajectory import minimum_jerk

RATE_HZ = 500.0
FLEXOR_CHANNELS = [3, 4, 5]  # electrodes at 135°, 180°, 225°: the volar side


def simulate(seconds: float, **config) -> tuple[ArmbandSimulator, np.ndarray]:
    config.setdefault("bad_channel_probability", 0.0)
    simulator = ArmbandSimulator(SimulatorConfig(**config))
    emg, _, _ = simulator.next_emg(int(seconds * RATE_HZ))
    return simulator, emg


def high_passed(emg: np.ndarray) -> np.ndarray:
    return sosfiltfilt(butter(4, 20, "highpass", fs=RATE_HZ, output="sos"), emg, axis=0)


def hold_rms(simulator, emg, gesture: str) -> np.ndarray:
    """Per-channel RMS (C,) over every hold of `gesture` within the recording."""
    seconds = len(emg) / RATE_HZ
    filtered = high_passed(emg)
    pieces = [
        filtered[int(start * RATE_HZ) : int(end * RATE_HZ)]
        for name, start, end in simulator.trajectory.hold_intervals(seconds)
        if name == gesture and end < seconds
    ]
    return np.sqrt(np.mean(np.concatenate(pieces) ** 2, axis=0))


@pytest.fixture(scope="module")
def recording():
    return simulate(30.0, seed=3)


def test_same_seed_gives_identical_streams_however_it_is_read():
    whole = ArmbandSimulator(SimulatorConfig(seed=5)).next_emg(1234)
    chunked_simulator = ArmbandSimulator(SimulatorConfig(seed=5))
    parts = [chunked_simulator.next_emg(size) for size in (1, 7, 250, 3, 500, 473)]
    for column in range(3):
        np.testing.assert_array_equal(
            whole[column], np.concatenate([part[column] for part in parts])
        )
    np.testing.assert_array_equal(whole[1], np.arange(1234))
    assert whole[0].dtype == np.float32 and whole[2].shape == (1234, 6)


def test_different_seeds_give_different_streams():
    emg_a, _, _ = ArmbandSimulator(SimulatorConfig(seed=1)).next_emg(500)
    emg_b, _, _ = ArmbandSimulator(SimulatorConfig(seed=2)).next_emg(500)
    assert not np.allclose(emg_a, emg_b)


def test_fist_is_much_stronger_than_rest_at_realistic_amplitudes(recording):
    simulator, emg = recording
    rest_uv, fist_uv = (
        hold_rms(simulator, emg, "rest"),
        hold_rms(simulator, emg, "fist"),
    )
    assert np.all(rest_uv > 3) and np.all(rest_uv < 20)
    assert 80 < fist_uv.max() < 500
    assert fist_uv.max() > 10 * rest_uv.max()


def hold_samples(simulator, emg, gesture: str) -> np.ndarray:
    seconds = len(emg) / RATE_HZ
    return np.concatenate(
        [
            emg[int(start * RATE_HZ) : int(end * RATE_HZ)]
            for name, start, end in simulator.trajectory.hold_intervals(seconds)
            if name == gesture and end < seconds
        ]
    )


@pytest.mark.parametrize("line_hz", [50.0, 60.0])
def test_power_is_in_the_emg_band_with_a_line_noise_peak(line_hz):
    simulator, emg = simulate(12.0, seed=4, line_frequency_hz=line_hz)
    freqs, power = welch(emg - emg.mean(axis=0), fs=RATE_HZ, nperseg=1000, axis=0)
    power = power.sum(axis=1)
    in_band = (freqs >= 20) & (freqs <= 250)
    assert power[in_band].sum() > 0.9 * power.sum()
    assert 70 <= freqs[np.argmax(np.where(in_band, power, 0))] <= 160
    # Mains stands out where the muscles are quiet.
    rest = hold_samples(simulator, emg, "rest")
    freqs, power = welch(rest - rest.mean(axis=0), fs=RATE_HZ, nperseg=500, axis=0)
    power = power.sum(axis=1)
    near = (np.abs(freqs - line_hz) > 3) & (np.abs(freqs - line_hz) < 15)
    assert power[np.argmin(np.abs(freqs - line_hz))] > 5 * np.median(power[near])


def flexor_lead_ms(electromechanical_delay_s: float) -> float:
    """Lag (ms) at which the flexor EMG envelope best matches later finger flexion."""
    simulator, emg = simulate(
        40.0, seed=0, electromechanical_delay_s=electromechanical_delay_s
    )
    rectified = np.abs(high_passed(emg)[:, FLEXOR_CHANNELS]).sum(axis=1)
    envelope = sosfiltfilt(butter(2, 4, fs=RATE_HZ, output="sos"), rectified)
    times_s = np.arange(len(emg)) / RATE_HZ
    finger_angles = simulator.trajectory.angles(times_s, tremor=False)[:, 4:]
    flexion = finger_angles.reshape(-1, 4, 4)[:, :, 1:].sum(axis=(1, 2))
    lags = np.arange(0, 75)  # 0-150 ms
    scores = [
        np.corrcoef(envelope[: len(envelope) - lag], flexion[lag:])[0, 1]
        for lag in lags
    ]
    return 1000.0 * lags[int(np.argmax(scores))] / RATE_HZ


def test_flexor_emg_leads_flexion_by_the_electromechanical_delay():
    lead_ms = flexor_lead_ms(0.05)
    assert 30 <= lead_ms <= 80
    assert 35 <= lead_ms - flexor_lead_ms(0.0) <= 65


def test_rotating_the_band_by_45_degrees_shifts_the_pattern_by_one_electrode():
    simulator, emg = simulate(10.0, seed=7)
    rotated_simulator, rotated_emg = simulate(10.0, seed=7, band_rotation_deg=45.0)
    pattern = hold_rms(simulator, emg, "fist")
    rotated = hold_rms(rotated_simulator, rotated_emg, "fist")
    shifts = np.arange(-3, 4)
    matches = [np.corrcoef(rotated, np.roll(pattern, shift))[0, 1] for shift in shifts]
    # Electrode k now sits where electrode k+1 was; contact gains stay per electrode.
    assert shifts[int(np.argmax(matches))] == -1
    assert max(matches) > 0.85


def first_seed_with_bad_channel(kind: str) -> ArmbandSimulator:
    for seed in range(100):
        config = SimulatorConfig(seed=seed, bad_channel_probability=1.0)
        simulator = ArmbandSimulator(config)
        if simulator.bad_channel_kind == kind:
            return simulator
    raise AssertionError(f"no seed gives a {kind} channel")


def test_a_flat_bad_channel_is_reported_and_flat():
    simulator = first_seed_with_bad_channel("flat")
    emg, _, _ = simulator.next_emg(2000)
    (channel,) = simulator.bad_channels
    assert np.std(emg[:, channel]) < 1e-6
    assert np.all(np.std(np.delete(emg, channel, axis=1), axis=0) > 1.0)


def test_a_noisy_bad_channel_is_reported_and_far_louder_than_the_rest():
    simulator = first_seed_with_bad_channel("noisy")
    emg, _, _ = simulator.next_emg(2000)
    (channel,) = simulator.bad_channels
    rms_uv = np.sqrt(np.mean(high_passed(emg) ** 2, axis=0))
    assert rms_uv[channel] > 5 * np.median(np.delete(rms_uv, channel))


def test_bad_channels_follow_the_configured_probability():
    assert (
        ArmbandSimulator(SimulatorConfig(bad_channel_probability=0.0)).bad_channels
        == []
    )
    bad = [
        bool(ArmbandSimulator(SimulatorConfig(seed=seed)).bad_channels)
        for seed in range(60)
    ]
    assert 3 <= sum(bad) <= 25  # 0.2 of 60 = 12


def test_minimum_jerk_profile_starts_and_ends_at_rest():
    progress = np.array([0.0, 0.5, 1.0])
    np.testing.assert_allclose(minimum_jerk(progress), [0.0, 0.5, 1.0])


def test_transitions_are_smooth_and_holds_reach_their_targets():
    simulator = ArmbandSimulator(SimulatorConfig(seed=2))
    times_s = np.arange(0.0, 20.0, 0.001)
    _, velocities, _ = simulator.trajectory.drive_kinematics(times_s)
    # Continuous velocity: steps shrink with the time step (a jump would not).
    steps_1ms = np.abs(np.diff(velocities, axis=0)).max()
    fine_times_s = np.arange(0.0, 20.0, 0.00025)
    _, fine_velocities, _ = simulator.trajectory.drive_kinematics(fine_times_s)
    assert np.abs(np.diff(fine_velocities, axis=0)).max() < 0.3 * steps_1ms
    assert np.abs(velocities).max() > 1.0  # and it does move
    for name, start, end in simulator.trajectory.hold_intervals(20.0):
        hold = np.linspace(start + 0.01, end - 0.01, 20)
        angles = simulator.trajectory.angles(hold, tremor=False)
        assert np.ptp(angles, axis=0).max() < 1e-9  # still during the hold
        assert np.abs(angles[0] - GESTURES[name]).mean() < 0.15
        assert simulator.trajectory.gestures(hold) == [name] * 20


def test_hand_state_and_camera_landmarks():
    simulator = ArmbandSimulator(
        SimulatorConfig(seed=1, camera_failure_probability=0.2)
    )
    times_s = simulator.camera_times(0.0, 4.0)
    state = simulator.hand_state(times_s)
    assert state["joint_angles"].shape == (120, 20)
    assert state["pose"].shape == (120, 48) and state["joints"].shape == (120, 21, 3)
    landmarks, score = simulator.camera_landmarks(times_s)
    again, _ = simulator.camera_landmarks(times_s)
    np.testing.assert_array_equal(landmarks, again)
    failed = np.isnan(landmarks).any(axis=(1, 2))
    assert 0 < failed.sum() < 60 and np.all(score[failed] < 0.5)
    truth_m = state["joints"] / 1000.0
    truth_m = truth_m - truth_m.mean(axis=1, keepdims=True)
    error_mm = 1000 * np.abs(landmarks[~failed] - truth_m[~failed])
    assert 1.0 < error_mm[..., :2].std() < 5.0
    assert error_mm[..., 2].std() > error_mm[..., :2].std()


def test_generation_is_fast():
    simulator = ArmbandSimulator(SimulatorConfig(seed=0))
    simulator.next_emg(500)
    started = time.process_time()
    simulator.next_emg(int(20 * RATE_HZ))
    cpu_ms_per_second = (time.process_time() - started) * 1000 / 20
    assert cpu_ms_per_second < 5.0


def test_offline_device_gives_consecutive_packages_then_ends():
    device = SimulatedArmband(seed=1, realtime=False, duration_s=1.0)
    with device:
        device.start()
        chunks = [device.read() for _ in range(12)]
    package_num = np.concatenate([chunk.package_num for chunk in chunks])
    np.testing.assert_array_equal(package_num, np.arange(500))
    assert len(chunks[-1]) == 0
    assert device.info.num_channels == 8 and device.info.has_imu
    assert device.dropped_packets == 0


def test_dropped_packets_are_counted_and_leave_gaps():
    device = SimulatedArmband(seed=1, realtime=False, drop_packet_every=10)
    device.start()
    package_num = np.concatenate([device.read().package_num for _ in range(20)])
    assert len(package_num) == 900
    assert device.dropped_packets == 100
    assert np.sum(np.diff(package_num) == 2) == 99


def test_realtime_reads_follow_the_wall_clock():
    device = SimulatedArmband(seed=1, realtime=True)
    device.start()
    started = time.time()
    num_samples = 0
    while time.time() - started < 0.2:
        chunk = device.read(timeout_s=0.5)
        num_samples += len(chunk)
    device.stop()
    assert 90 <= num_samples <= 115
    assert np.all(np.diff(chunk.time) > 0)
    assert abs(chunk.time[-1] - time.time()) < 0.1


def test_session_zero_is_the_plain_seed_and_other_sessions_differ():
    plain = ArmbandSimulator(SimulatorConfig(seed=6)).next_emg(600)[0]
    session_0 = ArmbandSimulator(SimulatorConfig(seed=6, session=0)).next_emg(600)[0]
    session_2 = ArmbandSimulator(SimulatorConfig(seed=6, session=2)).next_emg(600)[0]
    np.testing.assert_array_equal(plain, session_0)
    assert not np.allclose(plain, session_2)


def test_another_session_keeps_the_anatomy_under_a_slightly_moved_band():
    first, emg = simulate(10.0, seed=7)
    second, second_emg = simulate(10.0, seed=7, session=1)
    assert 0 < abs(second.band_rotation_deg - first.band_rotation_deg) <= 5.0
    pattern = hold_rms(first, emg, "fist")
    second_pattern = hold_rms(second, second_emg, "fist")
    assert np.corrcoef(pattern, second_pattern)[0, 1] > 0.9
    assert not np.allclose(pattern, second_pattern, rtol=0.01)
    with_bad = [SimulatorConfig(seed=9, session=s, bad_channel_probability=1.0)
                for s in (0, 3)]  # fmt: skip
    assert len({tuple(ArmbandSimulator(c).bad_channels) for c in with_bad}) == 1


def test_another_session_makes_the_same_gestures_with_other_timing_and_camera_noise():
    first = ArmbandSimulator(SimulatorConfig(seed=6))
    second = ArmbandSimulator(SimulatorConfig(seed=6, session=2))
    holds = [sim.trajectory.hold_intervals(30.0)[:8] for sim in (first, second)]
    assert [name for name, *_ in holds[0]] == [name for name, *_ in holds[1]]
    assert holds[0][3][1:] != pytest.approx(holds[1][3][1:], abs=0.01)
    for (name, start, _), (_, start_2, _) in zip(*holds, strict=True):
        angles = [
            sim.trajectory.angles(np.array([hold_start + 0.01]), tremor=False)[0]
            for sim, hold_start in ((first, start), (second, start_2))
        ]
        assert np.abs(angles[0] - angles[1]).mean() < 0.1, name  # personal targets
    times_s = first.camera_times(0.0, 2.0)
    landmarks = [
        np.nan_to_num(sim.camera_landmarks(times_s)[0]) for sim in (first, second)
    ]
    assert not np.allclose(*landmarks, atol=1e-4)


def test_people_differ_more_when_asked_and_the_hand_stays_the_same():
    """anatomy_spread, motor habits and fat change the EMG a person makes for the
    same gestures, never the hand itself; off (the defaults) they change nothing."""
    typical, emg = simulate(10.0, seed=8)
    for varied_config in ({"anatomy_spread": 2.0}, {"motor_habit_spread": 0.4},
                          {"fat_offset_mm": (3.0, 4.0)}):  # fmt: skip
        varied, varied_emg = simulate(10.0, seed=8, **varied_config)
        assert not np.allclose(emg, varied_emg), varied_config
        times_s = np.linspace(0.0, 10.0, 50)
        np.testing.assert_array_equal(
            typical.hand_state(times_s)["joints"], varied.hand_state(times_s)["joints"]
        )
    _, off = simulate(10.0, seed=8, motor_habit_spread=0.0, fat_offset_mm=(0.0, 0.0))
    np.testing.assert_array_equal(emg, off)


def test_more_fat_between_muscle_and_skin_means_weaker_emg():
    thin, thin_emg = simulate(20.0, seed=4, fat_offset_mm=(-2.0, -2.0))
    thick, thick_emg = simulate(20.0, seed=4, fat_offset_mm=(4.0, 4.0))
    thin_fist, thick_fist = (
        hold_rms(thin, thin_emg, "fist"),
        hold_rms(thick, thick_emg, "fist"),
    )
    assert thick_fist.mean() < 0.8 * thin_fist.mean()
