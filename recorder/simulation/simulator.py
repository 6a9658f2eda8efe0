"""The simulated armband wearer: one seed -> one subject, one endless recording.

Chain: protocol -> hand trajectory (trajectory.py) -> muscle drive and activation
(muscles.py, electromechanical delay) -> 8-channel EMG and IMU (emg.py); the same
trajectory gives ground-truth joints (labeling.kinematics) and noisy camera landmarks
(camera.py). Times are seconds on the simulator's clock: sample i is at i / rate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from labeling.kinematics import angles_to_mano_pose, forward_kinematics
from recorder.simulation.camera import noisy_landmarks
from recorder.simulation.emg import EmgGenerator, imu_block
from recorder.simulation.gestures import DEFAULT_PROTOCOL
from recorder.simulation.muscles import MUSCLES, MuscleModel
from recorder.simulation.trajectory import HandTrajectory

BLOCK_SAMPLES = 250  # generation block; fixed so chunked reads give identical streams


@dataclass
class SimulatorConfig:
    seed: int = 0  # one seed = one subject (anatomy, posture habits) and one noise draw
    sampling_rate_hz: float = 500.0  # MindRove armband
    num_channels: int = 8
    camera_fps: float = 30.0
    line_frequency_hz: float = 50.0  # 60.0 in the Americas
    line_noise_uv: float = 4.0  # mains amplitude per electrode (varies ×0.5-1.5)
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

    def as_dict(self) -> dict:
        return asdict(self)


class ArmbandSimulator:
    """An endless, reproducible EMG + IMU stream with its hand ground truth."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        seed = self.config.seed
        anatomy_rng = np.random.default_rng([seed, 1])
        self._noise_rng = np.random.default_rng([seed, 2])
        self.trajectory = HandTrajectory(self.config.protocol, subject_seed=seed)
        self.muscles = MuscleModel(
            self.config.sampling_rate_hz, self.config.activation_time_constant_s
        )
        self._emg = EmgGenerator(MUSCLES, anatomy_rng, self._noise_rng, self.config)
        self._imu_wobble = (anatomy_rng.uniform(0.05, 0.3, 2), np.deg2rad([6.0, 4.0]))
        self.channel_names = tuple(f"ch{k + 1}" for k in range(self.config.num_channels))
        self._next_block_index = 0
        self._buffer: list[np.ndarray] = []  # [emg, sample_index, imu] not yet served

    @property
    def bad_channels(self) -> list[int]:
        """Ground-truth bad channel indexes (empty when all are good)."""
        return list(self._emg.bad_channels)

    @property
    def bad_channel_kind(self) -> str:
        """"flat", "noisy" or "" when no channel is bad."""
        return self._emg.bad_channel_kind
