"""Forearm muscles and how the hand's kinematics drive them.

Generative model, per muscle m (0..1 neural drive u, then activation a):
    u_m(t) = baseline
             + tonic_m  · Σ_d w_md · |θ_d(t+δ) - θ_rest_d|₊ (holding a posture)
             + phasic_m · Σ_d w_md · |ω_d(t+δ)|₊            (bursts that move the joint)
             + cocontraction_m · effort(t+δ)                 (grip stiffening)
where the |·|₊ picks flexion for flexors and extension for extensors, δ is the
electromechanical delay (~50 ms: the EMG at t reflects kinematics at t + δ), and
a = first-order low-pass of u (time constant ~20 ms), standing for the smoothing of
motor-unit recruitment. The EMG amplitude follows a.

Muscles sit around the forearm at an angle (0° dorsal midline, 90° ulnar, 180° volar
midline, 270° radial; right arm, seen from the elbow) and a depth below the skin;
rough cross-sectional anatomy of the proximal third of the forearm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import lfilter, lfilter_zi

from recorder.simulation.gestures import GESTURES


@dataclass(frozen=True)
class Muscle:
    name: str
    angle_deg: float  # position around the forearm
    depth_mm: float  # below the skin
    flexes: dict[int, float] = field(default_factory=dict)  # angle index -> weight
    extends: dict[int, float] = field(default_factory=dict)
    cocontraction: float = 0.4  # share of grip effort


# Angle indexes (labeling.kinematics.ANGLE_NAMES): thumb 0-3 (cmc_abd, cmc_flex, mcp,
# ip), index 4-7, middle 8-11, ring 12-15, pinky 16-19 (abd, mcp, pip, dip).
MUSCLES: tuple[Muscle, ...] = (
    Muscle("fds_index_middle", 190, 8, flexes={5: 0.5, 6: 1, 9: 0.5, 10: 1}),
    Muscle("fds_ring_pinky", 160, 8, flexes={13: 0.5, 14: 1, 17: 0.5, 18: 1}),
    Muscle("fdp_index", 185, 17, flexes={5: 0.3, 6: 0.5, 7: 1}),
    Muscle(
        "fdp_middle_ring_pinky",
        160,
        16,
        flexes={10: 0.4, 11: 1, 14: 0.4, 15: 1, 18: 0.4, 19: 1},
    ),
    Muscle("fpl", 225, 17, flexes={1: 0.3, 2: 0.6, 3: 1}),
    Muscle("fcu", 130, 6, flexes={17: 0.3}, cocontraction=0.8),
    Muscle(
        "edc",
        15,
        6,
        extends={5: 1, 9: 1, 13: 1, 17: 0.6, 6: 0.3, 10: 0.3, 14: 0.3},
        cocontraction=0.3,
    ),
    Muscle("eip", 335, 14, extends={5: 1, 6: 0.3}, cocontraction=0.2),
    Muscle("edm", 55, 8, extends={17: 1, 18: 0.3}, cocontraction=0.2),
    Muscle(
        "epl_apl",
        300,
        11,
        flexes={0: 1},
        extends={1: 1, 2: 0.6, 3: 0.6},
        cocontraction=0.2,
    ),
    Muscle("ecu", 90, 6, cocontraction=0.8),
)

BASELINE_DRIVE = 0.02  # resting tone
FLEXION_RANGE_RAD = 1.2  # rest -> full flexion, gives a tonic drive of ~1
EXTENSION_RANGE_RAD = 0.5  # rest -> full extension
PHASIC_SPEED_RAD_S = 4.0  # joint speed of a brisk gesture
TONIC_GAIN = 0.45
PHASIC_GAIN = 0.15


def _weight_matrix(muscles: tuple[Muscle, ...], attribute: str) -> np.ndarray:
    """(20, M) weights of each angle for each muscle, columns summing to 1 (or 0)."""
    weights = np.zeros((20, len(muscles)))
    for column, muscle in enumerate(muscles):
        for angle_index, weight in getattr(muscle, attribute).items():
            weights[angle_index, column] = weight
    totals = weights.sum(axis=0)
    return weights / np.where(totals > 0, totals, 1.0)


@dataclass(frozen=True)
class MotorHabits:
    """How one person drives each muscle: gains (M,) on the shared model's tonic,
    phasic and co-contraction terms. People reach the same posture with different
    mixes of effort (a firmer grip, more extensor bracing, brisker bursts), so the
    same pose gives a different EMG pattern from person to person."""

    tonic: np.ndarray
    phasic: np.ndarray
    cocontraction: np.ndarray


def motor_habits(
    rng: np.random.Generator, num_muscles: int, spread: float
) -> MotorHabits:
    """One person's habits: log-normal gains around 1 with log-SD `spread`."""
    tonic, phasic, cocontraction = np.exp(rng.normal(0.0, spread, (3, num_muscles)))
    return MotorHabits(tonic, phasic, cocontraction)


def typical_habits(num_muscles: int) -> MotorHabits:
    ones = np.ones(num_muscles)
    return MotorHabits(ones, ones, ones)


class MuscleModel:
    """Maps kinematics to activations (n, M) in 0..1, carrying filter state so that
    consecutive calls form one continuous stream."""

    def __init__(
        self,
        sampling_rate_hz: float,
        activation_time_constant_s: float = 0.02,
        muscles: tuple[Muscle, ...] = MUSCLES,
        habits: MotorHabits | None = None,
    ) -> None:
        self.muscles = muscles
        habits = habits or typical_habits(len(muscles))
        self._flexor_weights = _weight_matrix(muscles, "flexes")
        self._extensor_weights = _weight_matrix(muscles, "extends")
        self._tonic_gain = TONIC_GAIN * habits.tonic
        self._phasic_gain = PHASIC_GAIN * habits.phasic
        self._cocontraction = habits.cocontraction * np.array(
            [muscle.cocontraction for muscle in muscles]
        )
        self._rest_angles = GESTURES["rest"]
        pole = np.exp(-1.0 / (activation_time_constant_s * sampling_rate_hz))
        self._filter = (np.array([1.0 - pole]), np.array([1.0, -pole]))
        self._state = lfilter_zi(*self._filter)[:, None] * BASELINE_DRIVE
        self._state = np.repeat(self._state, len(muscles), axis=1)

    def drive(
        self, angles: np.ndarray, velocities: np.ndarray, effort: np.ndarray
    ) -> np.ndarray:
        """Neural drive (n, M) in 0..1 from angles (n, 20) rad, velocities (n, 20)
        rad/s and grip effort (n,), all already advanced by the electromechanical
        delay."""
        offset = angles - self._rest_angles
        tonic = (
            np.maximum(offset, 0) @ self._flexor_weights / FLEXION_RANGE_RAD
            + np.maximum(-offset, 0) @ self._extensor_weights / EXTENSION_RANGE_RAD
        )
        phasic = (
            np.maximum(velocities, 0) @ self._flexor_weights
            + np.maximum(-velocities, 0) @ self._extensor_weights
        ) / PHASIC_SPEED_RAD_S
        drive = (
            BASELINE_DRIVE
            + self._tonic_gain * tonic
            + self._phasic_gain * phasic
            + effort[:, None] * self._cocontraction
        )
        return np.clip(drive, 0.0, 1.0)

    def activation(self, drive: np.ndarray) -> np.ndarray:
        """First-order activation dynamics over the next (n, M) drive samples."""
        activation, self._state = lfilter(*self._filter, drive, axis=0, zi=self._state)
        return activation
