"""CPEP's gesture task on emg2pose-layout files, as the seed set it up there: a
file's `stage` is its gesture class, and its windows are non-overlapping 2 s
windows over the whole file. Users take the roles of gesture_data (the last
`test_users` by name are scored, the `reference_users` before them give the
example poses and the unseen probes' training data, the rest pre-train on the seen
stages only); the `unseen` stages appear in no training stage."""

from __future__ import annotations

from pathlib import Path

import h5py

from training.cpep.gesture_data import GestureData
from training.cpep.windows import (
    WindowSet,
    continuous_windows,
    frame_rate_hz,
    normalized,
    window_seconds,
)
from training.data import DataError, LabeledSession
from training.emg2pose_data import GROUP, read_emg2pose
from training.preprocessing import FilterConfig, Normalization, filter_emg

PRETRAIN_STRIDE_S = 1.0


def stage_of(path: Path) -> str:
    with h5py.File(path, "r") as h5:
        stage = h5[GROUP].attrs.get("stage", "")
    stage = stage.decode() if isinstance(stage, bytes) else str(stage)
    if not stage:
        raise DataError(f"{path}: no 'stage' attribute, so no gesture class")
    return stage


def read_staged(directory: str | Path) -> list[tuple[LabeledSession, str]]:
    """(session, stage) of every .h5 / .hdf5 file under `directory`."""
    paths = sorted(
        p for p in Path(directory).rglob("*") if p.suffix in (".h5", ".hdf5")
    )
    if not paths:
        raise DataError(f"{directory}: no emg2pose .h5 files found")
    return [(read_emg2pose(path, path.stem), stage_of(path)) for path in paths]


def _user_roles(staged, reference_users: int, test_users: int):
    users = sorted({session.subject for session, _ in staged})
    if len(users) < reference_users + test_users + 1:
        raise DataError(
            f"{len(users)} users ({users}); need {reference_users} reference, "
            f"{test_users} test and at least one pre-training user"
        )
    test = users[len(users) - test_users :]
    reference = users[len(users) - test_users - reference_users : -test_users]
    return users[: len(users) - test_users - reference_users], reference, test


def _check_stages(staged, unseen: list[str]) -> tuple[list[str], list[str]]:
    stages = sorted({stage for _, stage in staged})
    unknown = sorted(set(unseen) - set(stages))
    if unknown:
        raise DataError(f"unseen stages {unknown} are not among the files' {stages}")
    seen = [s for s in stages if s not in unseen]
    if len(seen) < 2 or len(unseen) < 2:
        raise DataError(f"need two or more seen ({seen}) and unseen ({unseen}) stages")
    return seen, [s for s in stages if s in unseen]


def staged_gesture_data(
    staged: list[tuple[LabeledSession, str]], unseen: list[str],
    reference_users: int, test_users: int, emg_steps: int, pose_steps: int,
    filter_config: FilterConfig | None = None,
) -> GestureData:  # fmt: skip
    """GestureData from (session, stage) pairs, normalized on pre-training users."""
    filter_config = filter_config or FilterConfig()
    seen, unseen = _check_stages(staged, unseen)
    pretrain_users, reference, test = _user_roles(staged, reference_users, test_users)
    filtered = [filter_emg(s.emg, s.sampling_rate_hz, filter_config) for s, _ in staged]
    window_parts = {"pretrain": [], "gestures": [], "reference": [], "test": []}
    pretrain_emg = []
    for (session, stage), emg in zip(staged, filtered, strict=True):
        if session.subject in pretrain_users and stage in unseen:
            continue  # an unseen stage never reaches training
        length_s = window_seconds(session, emg_steps, pose_steps)  # no overlap
        labeled = continuous_windows(session, emg, emg_steps, pose_steps, length_s)
        labeled.gesture[:] = stage
        if session.subject in pretrain_users:
            pretrain_emg.append(emg)
            window_parts["pretrain"].append(
                continuous_windows(
                    session, emg, emg_steps, pose_steps, PRETRAIN_STRIDE_S
                )
            )
            window_parts["gestures"].append(labeled)
        else:
            role = "test" if session.subject in test else "reference"
            window_parts[role].append(labeled)
    parts = {role: WindowSet.concat(windows) for role, windows in window_parts.items()}
    emg_norm = Normalization.fit(pretrain_emg)
    poses = parts["pretrain"].pose
    pose_norm = Normalization.fit([poses.reshape(-1, poses.shape[2])])
    for role, windows in parts.items():
        parts[role] = WindowSet(
            normalized(windows.emg, emg_norm), normalized(windows.pose, pose_norm),
            windows.gesture, windows.subject,
        )  # fmt: skip
    return GestureData(
        seen, unseen, parts["pretrain"], parts["gestures"], parts["reference"],
        parts["test"], emg_norm, pose_norm, staged[0][0].sampling_rate_hz,
        frame_rate_hz(staged[0][0]),
    )  # fmt: skip
