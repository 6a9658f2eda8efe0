"""Surface EMG and IMU of an 8-electrode armband, from muscle activations.

Generative model:
- each muscle's source is unit gaussian noise shaped by a band-pass (40-200 Hz
  Butterworth, i.e. power from ~20 Hz up to Nyquist with a broad peak near 90 Hz; at
  500 Hz the usual 20-450 Hz EMG band is cut at 250 Hz), scaled by its activation and
  a peak amplitude (µV);
- volume conduction mixes sources into electrodes: electrode k sits at
  360°·k/C + band rotation; the gain of muscle m at electrode k is
  exp(-Δ²/2σ²) · (D/(D+depth))^1.5 with Δ the angular distance and a spread σ that
  widens with depth (deep sources blur over more electrodes);
- per subject (seed) the anatomy jitters: muscle angles ±8°, depths and gains ±15-20 %,
  electrode contact gains ±10 %, and a layer of subcutaneous fat thinner or thicker
  than the typical forearm's shifts every source deeper or shallower (weaker and
  more blurred, or stronger and sharper);
- nuisances, added per electrode: mains interference at the line frequency (plus a
  weaker third harmonic), slow baseline drift, motion artifacts (1-15 Hz noise whose
  amplitude follows how fast the hand moves), a white noise floor of a few µV, and
  optionally one bad channel (flat, or very noisy and saturating).
Noise is drawn from one generator in fixed-size blocks and the filters carry their
state, so the stream does not depend on how it is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.signal import butter, sosfilt, sosfilt_zi

from recorder.simulation.muscles import Muscle

if TYPE_CHECKING:
    from recorder.simulation.simulator import SimulatorConfig

MUSCLE_PEAK_UV = 550.0  # RMS at the skin right over a superficial, fully active muscle
DEPTH_SCALE_MM = 10.0
SPREAD_DEG = 28.0  # angular spread of a superficial source
SPREAD_DEG_PER_MM = 1.2  # extra spread per mm of depth
SATURATION_UV = 2000.0  # a bad, saturating channel clips here
BAD_CHANNEL_NOISE_UV = 900.0
# How far one person's anatomy departs from the typical forearm's (log-SD for gains
# and depths): where each muscle lies, how deep, how strong, and each electrode's skin
# contact. SimulatorConfig.anatomy_spread scales them all.
MUSCLE_ANGLE_SD_DEG = 8.0
MUSCLE_DEPTH_LOG_SD = 0.15
MUSCLE_GAIN_LOG_SD = 0.2
CONTACT_GAIN_LOG_SD = 0.1
MIN_DEPTH_MM = 1.0  # under the thinnest skin
MOTION_SPEED_RAD_S = 20.0  # summed joint speed of a brisk whole-hand movement


def electrode_angles_rad(num_channels: int, band_rotation_deg: float) -> np.ndarray:
    """Angle (C,) of each electrode around the forearm (0 = dorsal midline)."""
    return 2 * np.pi * np.arange(num_channels) / num_channels + np.deg2rad(
        band_rotation_deg
    )


def mixing_matrix(
    muscle_angles_rad: np.ndarray, depths_mm: np.ndarray, electrode_rad: np.ndarray
) -> np.ndarray:
    """Volume-conduction gains (M, C) from muscles to electrodes (unitless, <= 1)."""
    difference = muscle_angles_rad[:, None] - electrode_rad[None, :]
    distance = np.angle(np.exp(1j * difference))  # wrapped to [-π, π]
    spread = np.deg2rad(SPREAD_DEG + SPREAD_DEG_PER_MM * depths_mm)[:, None]
    depth_gain = (DEPTH_SCALE_MM / (DEPTH_SCALE_MM + depths_mm))[:, None] ** 1.5
    return np.exp(-0.5 * (distance / spread) ** 2) * depth_gain


def source_filter(sampling_rate_hz: float) -> tuple[np.ndarray, float]:
    """Band-pass shaping sections for muscle sources and the gain that makes unit
    white noise come out with unit RMS."""
    high_hz = min(160.0, 0.45 * sampling_rate_hz)
    sos = butter(
        2, [50.0, high_hz], btype="bandpass", fs=sampling_rate_hz, output="sos"
    )
    impulse = np.zeros(4096)
    impulse[0] = 1.0
    return sos, 1.0 / np.sqrt(np.sum(sosfilt(sos, impulse) ** 2))


class EmgGenerator:
    """Turns activations (n, M) into armband EMG (n, C) in µV, block by block."""

    def __init__(
        self,
        muscles: tuple[Muscle, ...],
        anatomy_rng: np.random.Generator,
        noise_rng: np.random.Generator,
        config: SimulatorConfig,
        fat_offset_mm: float = 0.0,
    ) -> None:
        self.config = config
        self._noise_rng = noise_rng
        self.mixing = self._subject_mixing(muscles, anatomy_rng, fat_offset_mm)  # µV
        num_channels = config.num_channels
        self._line_uv = config.line_noise_uv * anatomy_rng.uniform(
            0.5, 1.5, num_channels
        )
        self._line_phase = anatomy_rng.uniform(0, 2 * np.pi, (2, num_channels))
        # Two slow sways shared by all electrodes, mixed with per-electrode weights.
        self._drift_hz = anatomy_rng.uniform(0.03, 0.3, 2)
        self._drift_weights = anatomy_rng.normal(0, 1, (4, num_channels))
        self._floor_uv = config.noise_floor_uv * anatomy_rng.uniform(
            0.8, 1.2, num_channels
        )
        self.bad_channels, self.bad_channel_kind = self._pick_bad_channel(anatomy_rng)
        rate = config.sampling_rate_hz
        self._source_sos, self._source_gain = source_filter(rate)
        self._source_state = self._initial_state(self._source_sos, len(muscles))
        self._artifact_sos = butter(
            2, [1.0, 15.0], btype="bandpass", fs=rate, output="sos"
        )
        self._artifact_state = self._initial_state(self._artifact_sos, num_channels)

    @staticmethod
    def _initial_state(sos: np.ndarray, width: int) -> np.ndarray:
        return np.repeat(sosfilt_zi(sos)[:, :, None] * 0.0, width, axis=2)

    def _subject_mixing(
        self,
        muscles: tuple[Muscle, ...],
        rng: np.random.Generator,
        fat_offset_mm: float,
    ) -> np.ndarray:
        sign = -1.0 if self.config.handedness == "left" else 1.0  # mirror image
        angles = sign * np.deg2rad([m.angle_deg for m in muscles])
        spread = self.config.anatomy_spread
        angles = angles + np.deg2rad(
            rng.normal(0, spread * MUSCLE_ANGLE_SD_DEG, len(muscles))
        )
        depths = np.array([m.depth_mm for m in muscles]) * np.exp(
            rng.normal(0, spread * MUSCLE_DEPTH_LOG_SD, len(muscles))
        )
        depths = np.maximum(depths + fat_offset_mm, MIN_DEPTH_MM)
        electrodes = electrode_angles_rad(
            self.config.num_channels, self.config.band_rotation_deg
        )
        muscle_gain = MUSCLE_PEAK_UV * np.exp(
            rng.normal(0, spread * MUSCLE_GAIN_LOG_SD, len(muscles))
        )
        contact_gain = np.exp(
            rng.normal(0, spread * CONTACT_GAIN_LOG_SD, self.config.num_channels)
        )
        gains = mixing_matrix(angles, depths, electrodes)
        return gains * muscle_gain[:, None] * contact_gain[None, :]

    def _pick_bad_channel(self, rng: np.random.Generator) -> tuple[list[int], str]:
        draw, channel, kind = (
            rng.random(),
            rng.integers(self.config.num_channels),
            rng.random(),
        )
        if draw >= self.config.bad_channel_probability:
            return [], ""
        return [int(channel)], ("flat" if kind < 0.5 else "noisy")

    def block(
        self, times_s: np.ndarray, activation: np.ndarray, hand_speed_rad_s: np.ndarray
    ) -> np.ndarray:
        """EMG (n, C) in µV at `times_s` (n,) from activations (n, M) and the summed
        joint speed (n,) that drives motion artifacts."""
        num_samples, num_muscles = activation.shape
        num_channels = self.config.num_channels
        white = self._noise_rng.standard_normal(
            (num_samples, num_muscles + 2 * num_channels)
        )
        sources, self._source_state = sosfilt(
            self._source_sos, white[:, :num_muscles], axis=0, zi=self._source_state
        )
        emg = (sources * (activation * self._source_gain)) @ self.mixing
        emg += white[:, num_muscles : num_muscles + num_channels] * self._floor_uv
        emg += self._line_noise(times_s) + self._drift(times_s)
        emg += self._motion_artifact(
            white[:, num_muscles + num_channels :], hand_speed_rad_s
        )
        floor_noise = white[:, num_muscles : num_muscles + num_channels]
        return self._spoil_bad_channel(emg, floor_noise)

    def _line_noise(self, times_s: np.ndarray) -> np.ndarray:
        phase = 2 * np.pi * self.config.line_frequency_hz * times_s
        fundamental = _shifted_sine(phase, self._line_phase[0])
        third = 0.3 * _shifted_sine(3 * phase, self._line_phase[1])
        return (fundamental + third) * self._line_uv

    def _drift(self, times_s: np.ndarray) -> np.ndarray:
        phase = 2 * np.pi * self._drift_hz[None, :] * times_s[:, None]  # (n, 2)
        waves = np.concatenate([np.sin(phase), np.cos(phase)], axis=1)  # (n, 4)
        return self.config.drift_uv / np.sqrt(2) * (waves @ self._drift_weights)

    def _motion_artifact(
        self, white: np.ndarray, speed_rad_s: np.ndarray
    ) -> np.ndarray:
        wobble, self._artifact_state = sosfilt(
            self._artifact_sos, white, axis=0, zi=self._artifact_state
        )
        # The band-pass keeps ~1/10 of white noise's RMS; the 3 brings it back to ~1.
        strength = np.clip(speed_rad_s / MOTION_SPEED_RAD_S, 0.0, 1.5) ** 2
        return 3.0 * self.config.motion_artifact_uv * wobble * strength[:, None]

    def _spoil_bad_channel(self, emg: np.ndarray, white: np.ndarray) -> np.ndarray:
        if not self.bad_channels:
            return emg
        channel = self.bad_channels[0]
        if self.bad_channel_kind == "flat":
            emg[:, channel] = 0.0
        else:
            emg[:, channel] += BAD_CHANNEL_NOISE_UV * white[:, channel]
            np.clip(emg[:, channel], -SATURATION_UV, SATURATION_UV, out=emg[:, channel])
        return emg


def _shifted_sine(phase: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """sin(phase + shift) as (n, C) for phase (n,) and shift (C,), with n sines only."""
    return np.outer(np.sin(phase), np.cos(shift)) + np.outer(
        np.cos(phase), np.sin(shift)
    )


def imu_block(
    times_s: np.ndarray,
    hand_speed_rad_s: np.ndarray,
    rng: np.random.Generator,
    wobble: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """IMU (n, 6): accelerometer xyz in g (gravity seen by a slowly swaying forearm,
    plus jolts when the hand moves), gyroscope xyz in deg/s. `wobble` holds sway
    frequencies (Hz) and amplitudes (rad) for roll and pitch, each (2,)."""
    sway_hz, sway_rad = wobble
    phase = 2 * np.pi * sway_hz[None, :] * times_s[:, None]
    roll, pitch = (sway_rad * np.sin(phase)).T
    roll_rate, pitch_rate = (sway_rad * 2 * np.pi * sway_hz * np.cos(phase)).T
    gravity = np.stack(
        [-np.sin(pitch), np.sin(roll) * np.cos(pitch), np.cos(roll) * np.cos(pitch)], -1
    )
    noise = rng.standard_normal((len(times_s), 6))
    jolt = 0.01 * np.clip(hand_speed_rad_s / MOTION_SPEED_RAD_S, 0, 2)[:, None]
    accel = gravity + (0.003 + jolt) * noise[:, :3]
    gyro = (
        np.rad2deg(np.stack([roll_rate, pitch_rate, 0 * roll], -1)) + 0.3 * noise[:, 3:]
    )
    return np.concatenate([accel, gyro], axis=1)
