"""Session file -> emg2pose layout -> labeled session keeps the data."""

import dataclasses

import h5py
import numpy as np
import pytest

from labeling.kinematics import rest_joints_mm
from recorder.emg2pose_format import export_emg2pose
from tests.training.sessions import labeled_recording
from training.data import from_recording
from training.emg2pose_benchmark import file_metadata, load_tagged_sessions
from training.emg2pose_data import read_emg2pose
from training.emg2pose_sim import write_simulated_emg2pose
from training.simulated import simulated_labeled_session


def shared_frames(imported, recording):
    """(imported frame indices, recording frame indices) at the same instants:
    label frames every 8th sample (62.5 Hz) meet 30 fps camera frames every 0.4 s."""
    nearest = np.abs(imported.frame_time[:, None] - recording.frame_time[None])
    mine, theirs = np.nonzero(nearest < 1e-9)
    assert len(mine) >= 5
    return mine, theirs


def round_trip(tmp_path, recording):
    export_emg2pose(recording, tmp_path / "e.h5")
    return read_emg2pose(tmp_path / "e.h5"), tmp_path / "e.h5"


def with_lost_hand(recording, start_s=1.0, end_s=1.6):
    lost = (recording.frame_time >= start_s) & (recording.frame_time < end_s)
    return dataclasses.replace(recording, label_valid=recording.label_valid & ~lost)


def test_emg_times_labels_and_metadata_survive(tmp_path):
    recording = with_lost_hand(labeled_recording(seconds=4.0))
    recording.attrs.session, recording.attrs.protocol = "rt-1", "grips"
    imported, path = round_trip(tmp_path, recording)
    np.testing.assert_array_equal(imported.emg, recording.emg)
    np.testing.assert_array_equal(imported.emg_time, recording.emg_time)
    assert file_metadata(path) == {
        "user": "simulated-0",
        "stage": "grips",
        "session": "rt-1",
    }
    assert (imported.name, imported.subject, imported.handedness) == (
        "rt-1",
        "simulated-0",
        "right",
    )
    assert imported.sampling_rate_hz == 500.0
    assert imported.channel_names == tuple(recording.attrs.channel_names)
    with h5py.File(path) as h5:
        assert h5["emg2pose"].attrs["num_channels"] == 8
        assert h5["emg2pose"].attrs["device"] == "simulated"
    mine, theirs = shared_frames(imported, recording)
    valid = recording.label_valid[theirs]
    assert valid.any() and not valid.all()
    np.testing.assert_array_equal(imported.label_valid[mine], valid)
    np.testing.assert_allclose(
        imported.joint_angles[mine[valid]],
        recording.joint_angles[theirs[valid]],
        atol=1e-6,
    )
    assert np.isnan(imported.joint_angles[mine[~valid]]).all()
    joints = from_recording(recording, "rt-1").joints_mm
    np.testing.assert_allclose(
        imported.joints_mm[mine[valid]], joints[theirs[valid]], atol=0.05
    )


def test_a_left_hand_comes_back_as_the_same_left_hand(tmp_path):
    recording = simulated_labeled_session(
        4.0, subject_seed=1, handedness="left", bad_channel_probability=0.0
    )
    imported, _ = round_trip(tmp_path, recording)
    assert imported.handedness == "left"
    mine, theirs = shared_frames(imported, recording)
    valid = recording.label_valid[theirs]
    joints = from_recording(recording, "left").joints_mm
    # a left thumb lies on the other side of the hand from a right one
    right_thumb_x = rest_joints_mm()[4, 0]
    assert np.sign(imported.joints_mm[mine[valid], 4, 0].mean()) == -np.sign(
        right_thumb_x
    )
    np.testing.assert_allclose(
        imported.joints_mm[mine[valid]], joints[theirs[valid]], atol=0.05
    )


def test_simulated_users_and_stages_are_tagged(tmp_path):
    paths = write_simulated_emg2pose(tmp_path, users=2, stages=2, seconds_per_stage=3)
    assert [p.name for p in paths] == [
        "user0-fingers.h5",
        "user0-grips.h5",
        "user1-fingers.h5",
        "user1-grips.h5",
    ]
    tagged = load_tagged_sessions(tmp_path)
    assert [(t.user, t.stage) for t in tagged] == [
        ("simulated-0", "fingers"),
        ("simulated-0", "grips"),
        ("simulated-1", "fingers"),
        ("simulated-1", "grips"),
    ]
    # another stage is another movement set: the held poses differ
    fingers, grips = tagged[0].session, tagged[1].session
    assert not np.allclose(
        np.nanmean(fingers.joint_angles, 0),
        np.nanmean(grips.joint_angles, 0),
        atol=0.05,
    )
    with pytest.raises(ValueError, match="stages"):
        write_simulated_emg2pose(tmp_path, users=1, stages=9)
