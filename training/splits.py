"""emg2pose's generalization splits (001_*), from each session's user and stage.

Some users and some stages are held out. That makes a 2 × 2 grid of sessions:
- train: seen users on seen stages (a validation user is taken from these);
- "user": held-out users on seen stages;
- "stage": seen users on held-out stages;
- "user_stage": held-out users on held-out stages.
A run that asks only for "user" holds out no stage (and "stage" no user) unless
they are named, so it trains on all the seen users' stages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from training.data import DataError, LabeledSession

SPLITS = ("user", "stage", "user_stage")
HELD_OUT_FRACTION = 0.25  # of the users and of the stages, at least one of each


@dataclass
class TaggedSession:
    """A labeled session with its emg2pose metadata ("" where a file has none)."""

    session: LabeledSession
    user: str
    stage: str


@dataclass
class GeneralizationSplit:
    test_users: list[str]
    test_stages: list[str]
    train: list[TaggedSession]
    validation: list[TaggedSession]  # model selection only; never in `tests`
    tests: dict[str, list[TaggedSession]] = field(default_factory=dict)
    validation_note: str = ""


def check_splits(splits) -> None:
    unknown = [name for name in splits if name not in SPLITS]
    if unknown or not splits:
        raise ValueError(f"splits must be some of {SPLITS}, got {list(splits)}")


def _require(tagged: list[TaggedSession], key: str, split_names: list[str]) -> None:
    lacking = [t.session.name for t in tagged if not getattr(t, key)]
    if lacking:
        raise DataError(
            f"splits {split_names} need each session's {key}, but these have no "
            f"'{key}' metadata: {lacking[:5]}{' ...' if len(lacking) > 5 else ''}"
        )


def default_held_out(values: list[str], fraction: float = HELD_OUT_FRACTION):
    """The last ceil(fraction × n) of the sorted values (at least one)."""
    count = max(1, math.ceil(fraction * len(values)))
    return sorted(values)[-count:]


def _held_out(tagged, key: str, needed: bool, named: list[str] | None) -> list[str]:
    """The held-out users or stages: the named ones (checked), else the default
    when a split needs them, else none."""
    known = sorted({getattr(t, key) for t in tagged})
    if named:
        unknown = [name for name in named if name not in known]
        if unknown:
            raise DataError(f"unknown {key}s {unknown}; the data has {known}")
        return sorted(named)
    if not needed:
        return []
    if len(known) < 2:
        raise DataError(
            f"holding out a {key} needs at least 2 {key}s, the data has {known}"
        )
    return default_held_out(known)


def _quadrant(tagged, test_users, test_stages, user_out: bool, stage_out: bool):
    return [
        t
        for t in tagged
        if (t.user in test_users) == user_out and (t.stage in test_stages) == stage_out
    ]


def _validation(train: list[TaggedSession]):
    """(train, validation, note): a whole validation user when the training side
    has two or more; else its last session; with one session, that session (best
    epoch by training fit, never by a test side)."""
    users = sorted({t.user for t in train})
    if len(users) >= 2:
        validation = [t for t in train if t.user == users[-1]]
        note = f"validation: user {users[-1]} (taken out of training)"
    elif len(train) >= 2:
        validation = [max(train, key=lambda t: t.session.name)]
        note = f"validation: session {validation[0].session.name} (one user only)"
    else:
        return train, train, "validation: the training session itself (one only)"
    kept = [t for t in train if all(t is not v for v in validation)]
    return kept, validation, note


def make_split(
    tagged: list[TaggedSession],
    splits: list[str],
    test_users: list[str] | None = None,
    test_stages: list[str] | None = None,
) -> GeneralizationSplit:
    """The grid for `splits`; DataError when metadata are missing, a name is
    unknown, or any side (train or a requested test) is empty."""
    check_splits(splits)
    needs_user = bool(test_users) or any(s in ("user", "user_stage") for s in splits)
    needs_stage = bool(test_stages) or any(s in ("stage", "user_stage") for s in splits)
    if needs_user:
        _require(tagged, "user", splits)
    if needs_stage:
        _require(tagged, "stage", splits)
    users = _held_out(tagged, "user", needs_user, test_users)
    stages = _held_out(tagged, "stage", needs_stage, test_stages)
    train = _quadrant(tagged, users, stages, False, False)
    if not train:
        raise DataError(
            f"holding out users {users} and stages {stages} leaves no training sessions"
        )
    tests = {
        name: _quadrant(tagged, users, stages, "user" in name, "stage" in name)
        for name in splits
    }
    for name, sessions in tests.items():
        if not sessions:
            who = f"held-out users {users}" if "user" in name else "seen users"
            what = f"held-out stages {stages}" if "stage" in name else "seen stages"
            raise DataError(f"split {name!r} is empty: no session of {who} on {what}")
    train, validation, note = _validation(train)
    return GeneralizationSplit(users, stages, train, validation, tests, note)
