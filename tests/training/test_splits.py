"""emg2pose's generalization splits from user and stage metadata."""

import numpy as np
import pytest

from training.data import DataError, LabeledSession
from training.splits import TaggedSession, make_split


def tagged(user: str, stage: str) -> TaggedSession:
    """A one-sample session: the splits look only at names and metadata."""
    session = LabeledSession(
        name=f"{user}-{stage}",
        subject=user,
        sampling_rate_hz=500.0,
        channel_names=("ch1",),
        emg=np.zeros((1, 1), np.float32),
        emg_time=np.zeros(1),
        frame_time=np.zeros(1),
        joints_mm=np.zeros((1, 21, 3), np.float32),
        joint_angles=np.zeros((1, 20), np.float32),
        label_valid=np.ones(1, bool),
    )
    return TaggedSession(session, user, stage)


def grid(users=("a", "b", "c", "d"), stages=("s1", "s2", "s3")) -> list:
    return [tagged(user, stage) for user in users for stage in stages]


def pairs(sessions) -> set:
    return {(t.user, t.stage) for t in sessions}


def test_held_out_user_trains_on_every_stage_of_the_other_users():
    split = make_split(grid(), ["user"])
    assert split.test_users == ["d"] and split.test_stages == []
    assert pairs(split.tests["user"]) == {("d", "s1"), ("d", "s2"), ("d", "s3")}
    # the last training user validates; it is not trained on
    assert {t.user for t in split.validation} == {"c"}
    assert {t.user for t in split.train} == {"a", "b"}
    assert {t.stage for t in split.train} == {"s1", "s2", "s3"}


def test_the_three_splits_are_the_quadrants_of_one_grid():
    split = make_split(grid(), ["user", "stage", "user_stage"])
    assert split.test_users == ["d"] and split.test_stages == ["s3"]
    assert pairs(split.train) == {(u, s) for u in "ab" for s in ("s1", "s2")}
    assert pairs(split.tests["user"]) == {("d", "s1"), ("d", "s2")}
    assert pairs(split.tests["stage"]) == {("a", "s3"), ("b", "s3"), ("c", "s3")}
    assert pairs(split.tests["user_stage"]) == {("d", "s3")}
    seen = pairs(split.train) | pairs(split.validation)
    for sessions in split.tests.values():
        assert not pairs(sessions) & seen


def test_named_held_out_users_and_stages():
    split = make_split(grid(), ["stage"], test_stages=["s1"])
    assert split.test_users == [] and split.test_stages == ["s1"]
    assert {t.stage for t in split.tests["stage"]} == {"s1"}
    assert {t.user for t in split.tests["stage"]} == {"a", "b", "c", "d"}
    with pytest.raises(DataError, match=r"unknown users \['zed'\]"):
        make_split(grid(), ["user"], test_users=["zed"])


def test_one_user_splits_by_stage_and_validates_on_a_session():
    split = make_split(grid(users=("a",)), ["stage"])
    assert pairs(split.tests["stage"]) == {("a", "s3")}
    assert pairs(split.validation) == {("a", "s2")}
    assert pairs(split.train) == {("a", "s1")}


def test_missing_metadata_is_named():
    sessions = grid() + [tagged("e", "")]
    with pytest.raises(DataError, match=r"'stage' metadata: \['e-'\]"):
        make_split(sessions, ["stage"])
    # a user split does not need stages
    assert make_split(sessions, ["user"]).test_users == ["d", "e"]  # 2 of 5


def test_empty_sides_are_named():
    with pytest.raises(DataError, match="at least 2 users"):
        make_split(grid(users=("a",)), ["user"])
    with pytest.raises(DataError, match="leaves no training sessions"):
        make_split(grid(users=("a", "b")), ["user"], test_users=["a", "b"])
    # the held-out user never did the held-out stage
    sessions = [t for t in grid() if (t.user, t.stage) != ("d", "s3")]
    with pytest.raises(DataError, match="split 'user_stage' is empty"):
        make_split(sessions, ["user_stage"])
    with pytest.raises(ValueError, match="splits must be some of"):
        make_split(grid(), ["subject"])
