"""Seen and unseen gestures on multi-subject simulated data, split by subject.

The gestures are those of a built-in protocol (default "000", the seed's set);
`unseen` ones are held out of every training stage. Subjects (simulator seeds)
play four roles, none shared:
- pre-training subjects perform only the seen gestures: their continuous windows
  pre-train both MAEs, align CPEP and train the supervised baseline; their
  gesture windows train the in-distribution linear probes;
- reference subjects perform every gesture: their pose windows are the zero-shot
  gallery (gestures defined by example poses), and their unseen-gesture windows
  train the unseen linear probes (the seed's D_probe_tr^unseen);
- test subjects perform every gesture and are scored; nothing trains on them.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from recorder.guided.protocols import builtin_protocols
from recorder.simulation.gestures import GESTURES
from training.cpep.windows import (
    WindowSet,
    continuous_windows,
    frame_rate_hz,
    gesture_segments,
    gesture_windows,
    normalized,
)
from training.data import from_recording
from training.preprocessing import FilterConfig, Normalization, filter_emg
from training.simulated import simulated_session_with_truth

DEFAULT_UNSEEN = ("pinch", "peace", "thumb_flex", "ring_flex", "pinky_flex")
TRANSITION_ALLOWANCE_S = 1.2  # per step, on top of hold and rest (simulator's worst)
BAND_ROTATION_SD_DEG = 10.0  # how differently people put the band on


@dataclass
class GestureSetup:
    protocol: str = "000"
    unseen: tuple[str, ...] = DEFAULT_UNSEEN
    pretrain_subjects: int = 6
    reference_subjects: int = 3
    test_subjects: int = 3
    cycles: int = 3  # repetitions of the protocol per subject
    hold_s: float = 4.0  # long enough for a 2 s window after the transition
    rest_s: float = 2.0
    pretrain_stride_s: float = 1.0
    gesture_stride_s: float = 0.5
    labels: str = "truth"  # "ik": label with the product's IK (slow)
    seed: int = 0  # the first subject's simulator seed


@dataclass
class GestureData:
    """Windows with EMG and pose already normalized (statistics of the
    pre-training subjects only)."""

    seen: list[str]
    unseen: list[str]
    pretrain: WindowSet
    pretrain_gestures: WindowSet
    reference: WindowSet
    test: WindowSet
    emg_normalization: Normalization
    pose_normalization: Normalization
    sampling_rate_hz: float  # EMG
    pose_rate_hz: float  # label frames


def split_gestures(setup: GestureSetup) -> tuple[list[str], list[str]]:
    """(seen, unseen) gestures of the protocol that the simulator can perform."""
    protocols = builtin_protocols()
    if setup.protocol not in protocols:
        raise ValueError(f"unknown protocol {setup.protocol!r}; {sorted(protocols)}")
    gestures = [
        g for g in protocols[setup.protocol].gestures if g != "rest" and g in GESTURES
    ]
    unknown = sorted(set(setup.unseen) - set(gestures))
    if unknown:
        raise ValueError(f"unseen gestures {unknown} are not in {setup.protocol}")
    seen = [g for g in gestures if g not in setup.unseen]
    unseen = [g for g in gestures if g in setup.unseen]
    if len(seen) < 2 or len(unseen) < 2:
        raise ValueError(f"need two or more seen ({seen}) and unseen ({unseen})")
    return seen, unseen


def simulated_subject(setup: GestureSetup, seed: int, gestures: list[str]):
    """(LabeledSession, gesture segments) of one subject doing `gestures`."""
    protocol = tuple(
        step for g in gestures for step in (("rest", setup.rest_s), (g, setup.hold_s))
    )
    cycle_s = sum(hold for _, hold in protocol) + TRANSITION_ALLOWANCE_S * len(protocol)
    rotation_deg = float(
        np.random.default_rng([seed, 8]).normal(0, BAND_ROTATION_SD_DEG)
    )
    simulated = simulated_session_with_truth(
        setup.cycles * cycle_s, subject_seed=seed, labels=setup.labels,
        protocol=protocol, band_rotation_deg=rotation_deg,
    )  # fmt: skip
    recording = simulated.recording
    session = from_recording(recording, f"subject-{seed}")
    segments = gesture_segments(recording.events, float(recording.emg_time[-1]))
    return session, [s for s in segments if s[0] != "rest"]


def _subjects(setup, first_seed, count, gestures, filter_config):
    """[(session, filtered EMG, segments)] of `count` subjects from `first_seed`."""
    subjects = []
    for seed in range(first_seed, first_seed + count):
        started = time.monotonic()
        session, segments = simulated_subject(setup, seed, gestures)
        filtered = filter_emg(session.emg, session.sampling_rate_hz, filter_config)
        subjects.append((session, filtered, segments))
        seconds = len(session.emg) / session.sampling_rate_hz
        elapsed_s = time.monotonic() - started
        print(f"simulated subject {seed} ({seconds:.0f} s) in {elapsed_s:.1f} s",
              file=sys.stderr)  # fmt: skip
    return subjects


def _gesture_windows(subjects, emg_steps, pose_steps, stride_s) -> WindowSet:
    return WindowSet.concat(
        [gesture_windows(s, f, seg, emg_steps, pose_steps, stride_s)
         for s, f, seg in subjects]
    )  # fmt: skip


def _normalize(windows: WindowSet, emg_norm, pose_norm) -> WindowSet:
    return WindowSet(
        normalized(windows.emg, emg_norm), normalized(windows.pose, pose_norm),
        windows.gesture, windows.subject,
    )  # fmt: skip


def build_gesture_data(
    setup: GestureSetup, emg_steps: int, pose_steps: int,
    filter_config: FilterConfig | None = None,
) -> GestureData:  # fmt: skip
    """Simulates every subject and cuts and normalizes their windows."""
    filter_config = filter_config or FilterConfig()
    seen, unseen = split_gestures(setup)
    seed = setup.seed
    pretrain = _subjects(setup, seed, setup.pretrain_subjects, seen, filter_config)
    seed += setup.pretrain_subjects
    reference = _subjects(
        setup, seed, setup.reference_subjects, seen + unseen, filter_config
    )
    seed += setup.reference_subjects
    test = _subjects(setup, seed, setup.test_subjects, seen + unseen, filter_config)
    emg_norm = Normalization.fit([filtered for _, filtered, _ in pretrain])
    continuous = WindowSet.concat(
        [continuous_windows(s, f, emg_steps, pose_steps, setup.pretrain_stride_s)
         for s, f, _ in pretrain]
    )  # fmt: skip
    pose_norm = Normalization.fit(
        [continuous.pose.reshape(-1, continuous.pose.shape[2])]
    )
    stride_s = setup.gesture_stride_s
    parts = [
        continuous,
        _gesture_windows(pretrain, emg_steps, pose_steps, stride_s),
        _gesture_windows(reference, emg_steps, pose_steps, stride_s),
        _gesture_windows(test, emg_steps, pose_steps, stride_s),
    ]
    parts = [_normalize(part, emg_norm, pose_norm) for part in parts]
    first = pretrain[0][0]
    rates = (first.sampling_rate_hz, frame_rate_hz(first))
    return GestureData(seen, unseen, *parts, emg_norm, pose_norm, *rates)
