"""The simulated armband wearer: one seed -> one subject, one endless recording.

Chain: protocol -> hand trajectory (trajectory.py) -> muscle drive and activation
(muscles.py, electromechanical delay) -> 8-channel EMG and IMU (emg.py); the same
trajectory gives ground-truth joints (labeling.kinematics) and noisy camera landmarks
(camera.py). Times are seconds on the simulator's clock: sample i is at i / rate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from labeling.kinematics import angles_to_mano_pose, forward_kinematics
from recorder.simulation.camera import noisy_landmarks
from recorder.simulation.emg import EmgGenerator, imu_block
from recorder.simulation.gestures import DEFAULT_PROTOCOL
from recorder.simulation.muscles import MUSCLES, MuscleModel, motor_habits
from recorder.simulation.trajectory import HandTrajectory

BLOCK_SAMPLES = 250  # generation block; fixed so chunked reads give identical streams
# Keeps the streams of a subject's later sessions apart from every other subject's.
SESSION_SEED_STRIDE = 1 << 32
SESSION_BAND_SHIFT_DEG = 5.0  # a later session's band sits up to this far rotated


@dataclass
class SimulatorConfig:
    seed: int = 0  # one seed = one subject (anatomy, posture habits) and one noise draw
    # Another session of the same subject: 0 is the seed's own recording; others
    # redraw noise, movement timing and variation, and re-place the band a little.
    session: int = 0
    sampling_rate_hz: float = 500.0  # MindRove armband
    num_channels: int = 8
    camera_fps: float = 30.0
    line_frequency_hz: float = 50.0  # 60.0 in the Americas
    line_noise_uv: float = 6.0  # mains amplitude per electrode (varies ×0.5-1.5)
    band_rotation_deg: float = 0.0  # electrode 0 sits at the dorsal midline + this
    bad_channel_probability: float = 0.2  # chance that one electrode is bad
    handedness: str = "right"  # "left" mirrors joints and forearm anatomy
    electromechanical_delay_s: float = 0.05  # EMG at t reflects kinematics at t + this
    activation_time_constant_s: float = 0.02
    noise_floor_uv: float = 2.5  # electrode/amplifier white noise RMS
    drift_uv: float = 5.0  # amplitude of each of two slow baseline sways
    motion_artifact_uv: float = 30.0  # artifact RMS during brisk movements
    camera_noise_mm: float = 3.0
    camera_depth_noise_mm: float = 8.0
    camera_failure_probability: float = 0.03
    protocol: tuple[tuple[str, float], ...] = DEFAULT_PROTOCOL
    # How much people differ. anatomy_spread scales the anatomy jitter (emg.py's
    # MUSCLE_*_SD and CONTACT_GAIN_LOG_SD); the two below are off by default and are
    # drawn from a stream of their own, so a seed's other draws never change:
    anatomy_spread: float = 1.0
    motor_habit_spread: float = 0.0  # log-SD of a person's per-muscle drive gains
    fat_offset_mm: tuple[float, float] = (0.0, 0.0)  # subcutaneous fat vs typical

    def as_dict(self) -> dict:
        return asdict(self)


class ArmbandSimulator:
    """An endless, reproducible EMG + IMU stream with its hand ground truth."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        seed = self.config.seed
        anatomy_rng = np.random.default_rng([seed, 1])
        self._stream_seed = session_seed(seed, self.config.session)
        self._noise_rng = np.random.default_rng([self._stream_seed, 2])
        self.trajectory = HandTrajectory(
            self.config.protocol, subject_seed=seed, cycle_seed=self._stream_seed
        )
        person_rng = np.random.default_rng([seed, 5])
        self.muscles = MuscleModel(
            self.config.sampling_rate_hz,
            self.config.activation_time_constant_s,
            habits=motor_habits(
                person_rng, len(MUSCLES), self.config.motor_habit_spread
            ),
        )
        fat_offset_mm = float(person_rng.uniform(*self.config.fat_offset_mm))
        # The band's effective rotation this session (config value + re-placement).
        self.band_rotation_deg = self.config.band_rotation_deg + band_shift_deg(
            seed, self.config.session
        )
        placed = replace(self.config, band_rotation_deg=self.band_rotation_deg)
        self._emg = EmgGenerator(
            MUSCLES, anatomy_rng, self._noise_rng, placed, fat_offset_mm
        )
        self._imu_wobble = (anatomy_rng.uniform(0.05, 0.3, 2), np.deg2rad([6.0, 4.0]))
        self.channel_names = tuple(
            f"ch{k + 1}" for k in range(self.config.num_channels)
        )
        self._next_block_index = 0
        self._buffer: list[np.ndarray] = []  # [emg, sample_index, imu] not yet served

    @property
    def bad_channels(self) -> list[int]:
        """Ground-truth bad channel indexes (empty when all are good)."""
        return list(self._emg.bad_channels)

    @property
    def bad_channel_kind(self) -> str:
        """ "flat", "noisy" or "" when no channel is bad."""
        return self._emg.bad_channel_kind

    def next_emg(self, n_samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The next `n_samples` of the stream: emg (n, C) float32 µV, sample_index (n,)
        int64 (time = index / rate), imu (n, 6) float32 (accel g, gyro deg/s)."""
        blocks = [self._buffer] if self._buffer else []
        available = self._buffered_samples()
        while available < n_samples:
            blocks.append(self._generate_block())
            available += BLOCK_SAMPLES
        if len(blocks) > 1:
            self._buffer = [
                np.concatenate(parts) for parts in zip(*blocks, strict=True)
            ]
        elif blocks:
            self._buffer = blocks[0]
        served = [array[:n_samples] for array in self._buffer]
        self._buffer = [array[n_samples:] for array in self._buffer]
        return served[0], served[1], served[2]

    def _buffered_samples(self) -> int:
        return len(self._buffer[1]) if self._buffer else 0

    def _generate_block(self) -> list[np.ndarray]:
        config = self.config
        first = self._next_block_index * BLOCK_SAMPLES
        sample_index = np.arange(first, first + BLOCK_SAMPLES, dtype=np.int64)
        times_s = sample_index / config.sampling_rate_hz
        ahead_s = times_s + config.electromechanical_delay_s
        drive = self.muscles.drive(*self.trajectory.drive_kinematics(ahead_s))
        activation = self.muscles.activation(drive)
        hand_speed = np.abs(self.trajectory.drive_kinematics(times_s)[1]).sum(axis=1)
        emg = self._emg.block(times_s, activation, hand_speed)
        imu = imu_block(times_s, hand_speed, self._noise_rng, self._imu_wobble)
        self._next_block_index += 1
        return [emg.astype(np.float32), sample_index, imu.astype(np.float32)]

    def hand_state(self, times_s: np.ndarray) -> dict:
        """Ground truth at `times_s` (n,): joint_angles (n, 20) rad, pose (n, 48)
        float32 MANO, joints (n, 21, 3) float32 mm (wrist origin, MediaPipe order),
        gesture (list of n names)."""
        times_s = np.atleast_1d(np.asarray(times_s, dtype=np.float64))
        joint_angles = self.trajectory.angles(times_s)
        pose = angles_to_mano_pose(joint_angles)
        joints = forward_kinematics(pose)
        if self.config.handedness == "left":
            joints[..., 0] *= -1.0  # mirror image of the right hand
            pose = pose.reshape(-1, 16, 3) * np.array([1.0, -1.0, -1.0], np.float32)
            pose = pose.reshape(-1, 48)
        return {
            "joint_angles": joint_angles,
            "pose": pose.astype(np.float32),
            "joints": joints.astype(np.float32),
            "gesture": self.trajectory.gestures(times_s),
        }

    def camera_landmarks(self, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """MediaPipe-like world landmarks (m, 21, 3) float32 in metres (NaN where
        detection failed) and score (m,) at frame times `times_s` (m,) seconds."""
        times_s = np.atleast_1d(np.asarray(times_s, dtype=np.float64))
        joints_mm = self.hand_state(times_s)["joints"].astype(np.float64)
        config = self.config
        return noisy_landmarks(
            joints_mm,
            times_s,
            self._stream_seed,
            config.camera_noise_mm,
            config.camera_depth_noise_mm,
            config.camera_failure_probability,
        )

    def camera_times(self, start_s: float, duration_s: float) -> np.ndarray:
        """Frame times (m,) s of the camera from `start_s` for `duration_s`."""
        num_frames = int(np.floor(duration_s * self.config.camera_fps))
        return start_s + np.arange(num_frames) / self.config.camera_fps


def session_seed(seed: int, session: int) -> int:
    """The seed of one session's random streams (noise, timing, camera); session 0
    keeps the subject's seed, so its streams are the ones a plain seed gives."""
    if session < 0:
        raise ValueError(f"session must be 0 or more, got {session}")
    return seed + session * SESSION_SEED_STRIDE


def band_shift_deg(seed: int, session: int) -> float:
    """How far (degrees) the band sits rotated in `session` against session 0."""
    if session == 0:
        return 0.0
    rng = np.random.default_rng([seed, 4, session])
    return float(rng.uniform(-SESSION_BAND_SHIFT_DEG, SESSION_BAND_SHIFT_DEG))
