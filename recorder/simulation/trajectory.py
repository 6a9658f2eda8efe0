"""A deterministic, subject-specific hand trajectory that follows a gesture protocol.

Generative model:
- the protocol is a looping list of (gesture, hold_s) steps; the hand starts at rest;
- each step begins with a minimum-jerk transition from the previous posture,
  q(τ) = q0 + (q1 - q0)(10τ³ - 15τ⁴ + 6τ⁵), whose duration varies per repetition
  (0.35-0.8 s scaled by the subject's speed), then holds for hold_s ± 15 %;
- a subject seed perturbs each gesture's target (fixed per subject, like a personal
  way of making a fist), the movement speed, and per-repetition targets slightly;
- physiological tremor: a few 8-12 Hz sinusoids per joint, a fraction of a degree.
Everything is a closed-form function of time, so it can be evaluated at any times
(EMG samples and camera frames agree exactly).
"""

from __future__ import annotations

import numpy as np

from labeling.kinematics import JOINT_LIMITS_RAD
from recorder.simulation.gestures import DEFAULT_PROTOCOL, GESTURES, GRIP_EFFORT

NUM_ANGLES = 20
SUBJECT_TARGET_SD_RAD = 0.08  # personal posture differences
REPETITION_TARGET_SD_RAD = 0.03  # repetition-to-repetition differences
TRANSITION_RANGE_S = (0.35, 0.8)
HOLD_JITTER = 0.15
TREMOR_AMPLITUDE_RAD = 0.003  # ~0.2°, per sinusoid
TREMOR_BAND_HZ = (8.0, 12.0)


def minimum_jerk(progress: np.ndarray) -> np.ndarray:
    """Minimum-jerk position profile on progress τ in [0, 1]."""
    return progress**3 * (10.0 - 15.0 * progress + 6.0 * progress**2)


def minimum_jerk_rate(progress: np.ndarray) -> np.ndarray:
    """d/dτ of `minimum_jerk`."""
    return 30.0 * progress**2 * (1.0 - progress) ** 2


class HandTrajectory:
    """Joint angles (rad), velocities (rad/s), grip effort and gestures over time."""

    def __init__(
        self,
        protocol: tuple[tuple[str, float], ...] = DEFAULT_PROTOCOL,
        subject_seed: int = 0,
        cycle_seed: int | None = None,
    ) -> None:
        """`subject_seed` draws the person (gesture targets, speed, tremor);
        `cycle_seed` (default: the subject's) each repetition's timing and variation,
        so one person can move differently from session to session."""
        self.protocol = tuple(protocol)
        self.subject_seed = subject_seed
        self.cycle_seed = subject_seed if cycle_seed is None else cycle_seed
        rng = np.random.default_rng([subject_seed, 101])
        self._targets = {
            name: self._clip(angles + rng.normal(0, SUBJECT_TARGET_SD_RAD, NUM_ANGLES))
            for name, angles in GESTURES.items()
        }
        self._targets["rest"] = GESTURES["rest"].copy()  # relaxed stays the reference
        self._speed_scale = float(np.exp(rng.normal(0, 0.2)))
        self._tremor_hz = rng.uniform(*TREMOR_BAND_HZ, (3, NUM_ANGLES))
        self._tremor_phase = rng.uniform(0, 2 * np.pi, (3, NUM_ANGLES))
        self._steps: list[tuple[float, float, str, np.ndarray, np.ndarray]] = []
        self._end_s = 0.0
        self._last_target = self._targets["rest"]
        self._num_cycles = 0
        self._arrays: tuple[np.ndarray, ...] | None = None

    @staticmethod
    def _clip(angles: np.ndarray) -> np.ndarray:
        return np.clip(angles, JOINT_LIMITS_RAD[:, 0], JOINT_LIMITS_RAD[:, 1])

    def _add_cycle(self) -> None:
        """Append one repetition of the protocol with its own timing and targets."""
        rng = np.random.default_rng([self.cycle_seed, 202, self._num_cycles])
        for name, hold_s in self.protocol:
            transition_s = rng.uniform(*TRANSITION_RANGE_S) * self._speed_scale
            hold_s = hold_s * (1.0 + rng.uniform(-HOLD_JITTER, HOLD_JITTER))
            wobble = rng.normal(0, REPETITION_TARGET_SD_RAD, NUM_ANGLES)
            target = self._clip(self._targets[name] + wobble)
            self._steps.append(
                (self._end_s, transition_s, name, self._last_target, target)
            )
            self._end_s += transition_s + hold_s
            self._last_target = target
        self._num_cycles += 1
        self._arrays = None

    def _schedule(self, until_s: float) -> tuple[np.ndarray, ...]:
        while self._end_s <= until_s:
            self._add_cycle()
        if self._arrays is None:
            starts, durations, names, previous, targets = zip(*self._steps, strict=True)
            efforts = np.array([GRIP_EFFORT[name] for name in names])
            previous_efforts = np.concatenate([[GRIP_EFFORT["rest"]], efforts[:-1]])
            self._arrays = (
                np.array(starts),
                np.array(durations),
                np.stack(previous),
                np.stack(targets),
                previous_efforts,
                efforts,
            )
        return self._arrays

    def _locate(self, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
        """Step index and transition progress τ for each time."""
        times_s = np.asarray(times_s, dtype=np.float64)
        schedule = self._schedule(float(times_s.max(initial=0.0)))
        starts, durations = schedule[0], schedule[1]
        step = np.maximum(np.searchsorted(starts, times_s, side="right") - 1, 0)
        progress = np.clip((times_s - starts[step]) / durations[step], 0.0, 1.0)
        return step, progress, schedule

    def angles(self, times_s: np.ndarray, tremor: bool = True) -> np.ndarray:
        """Joint angles (n, 20) in radians at `times_s` (n,) seconds."""
        step, progress, schedule = self._locate(times_s)
        previous, targets = schedule[2][step], schedule[3][step]
        smooth = previous + (targets - previous) * minimum_jerk(progress)[:, None]
        if not tremor:
            return smooth
        return smooth + self._tremor(np.asarray(times_s, dtype=np.float64))

    def drive_kinematics(
        self, times_s: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the muscles see, in one pass: voluntary angles (n, 20) rad, velocities
        (n, 20) rad/s and grip effort (n,) 0..1. Tremor is left out (its EMG is small
        next to the voluntary drive and it is costly per sample)."""
        step, progress, schedule = self._locate(times_s)
        previous, delta = schedule[2][step], schedule[3][step] - schedule[2][step]
        angles = previous + delta * minimum_jerk(progress)[:, None]
        rate = minimum_jerk_rate(progress) / schedule[1][step]
        velocities = delta * rate[:, None]
        effort_previous, effort_target = schedule[4][step], schedule[5][step]
        effort = effort_previous + (effort_target - effort_previous) * minimum_jerk(
            progress
        )
        return angles, velocities, effort

    def gestures(self, times_s: np.ndarray) -> list[str]:
        """The prompted gesture at each time (during a transition: the one being
        moved toward)."""
        step, _, _ = self._locate(times_s)
        return [self._steps[index][2] for index in step]

    def hold_intervals(self, until_s: float) -> list[tuple[str, float, float]]:
        """(gesture, hold start s, hold end s) of every step that starts before
        `until_s`; during a hold the hand sits at its target (plus tremor)."""
        self._schedule(until_s)
        ends = [start for start, *_ in self._steps[1:]] + [self._end_s]
        return [
            (name, start + duration, end)
            for (start, duration, name, _, _), end in zip(
                self._steps, ends, strict=True
            )
            if start < until_s
        ]

    def _tremor(self, times_s: np.ndarray) -> np.ndarray:
        phase = 2 * np.pi * self._tremor_hz[None] * times_s[:, None, None]
        return TREMOR_AMPLITUDE_RAD * np.sin(phase + self._tremor_phase).sum(axis=1)
