import h5py
import numpy as np
import pytest

from labeling.kinematics import (
    JOINT_LIMITS_RAD,
    angles_to_mano_pose,
    forward_kinematics,
)
from recorder.emg2pose_format import export_emg2pose, joint_angles_at
from tests.training.sessions import labeled_recording
from training.data import DataError, WindowDataset, fit_normalization
from training.emg2pose_data import read_emg2pose
from training.preprocessing import FilterConfig

EMG2POSE_RATE_HZ = 2000.0


def write_real_emg2pose(path, seconds: float = 2.0, side: str = "right"):
    """A file shaped like emg2pose's own: 16 channels at 2 kHz, absolute unix times,
    no sample_rate attribute, IK failures as all-zero angle rows."""
    rng = np.random.default_rng(0)
    num_samples = int(seconds * EMG2POSE_RATE_HZ)
    rows = np.zeros(
        num_samples,
        [("time", "f8"), ("joint_angles", "f4", (20,)), ("emg", "f4", (16,))],
    )
    rows["time"] = 1.7e9 + np.arange(num_samples) / EMG2POSE_RATE_HZ
    rows["emg"] = rng.normal(0, 30, (num_samples, 16))
    low, high = JOINT_LIMITS_RAD[:, 0], JOINT_LIMITS_RAD[:, 1]
    rows["joint_angles"] = rng.uniform(low / 2, high / 2, (num_samples, 20))
    rows["joint_angles"][1000:1500] = 0.0  # an IK failure
    with h5py.File(path, "w") as h5:
        group = h5.create_group("emg2pose")
        group.attrs.update({"user": "u7", "session": "s3", "stage": "fingers",
                            "side": side})  # fmt: skip
        group.create_dataset("timeseries", data=rows)
    return rows


def test_our_exported_sessions_read_back_with_their_labels(tmp_path):
    recording = labeled_recording(seconds=4.0)
    recording.attrs.session = "exported"
    export_emg2pose(recording, tmp_path / "e.h5")
    session = read_emg2pose(tmp_path / "e.h5")
    assert session.name == "exported" and session.subject == "simulated-0"
    assert session.sampling_rate_hz == 500.0 and session.num_channels == 8
    np.testing.assert_array_equal(session.emg, recording.emg)
    np.testing.assert_array_equal(session.emg_time, recording.emg_time)
    # a label frame every 8th sample: 62.5 Hz
    np.testing.assert_array_equal(session.frame_time, recording.emg_time[::8])
    angles, valid = joint_angles_at(recording, session.frame_time)
    np.testing.assert_array_equal(session.label_valid, valid)
    assert 0.5 < valid.mean() < 1.0
    np.testing.assert_allclose(session.joint_angles[valid], angles[valid], atol=1e-6)
    assert np.isnan(session.joints_mm[~valid]).all()
    expected_joints = forward_kinematics(angles_to_mano_pose(angles[valid]))
    np.testing.assert_allclose(session.joints_mm[valid], expected_joints, atol=1e-3)


def test_emg2pose_files_give_a_60_hz_label_track_without_ik_failures(tmp_path):
    rows = write_real_emg2pose(tmp_path / "real.h5")
    session = read_emg2pose(tmp_path / "real.h5")
    assert session.name == "s3" and session.subject == "u7"
    assert session.sampling_rate_hz == pytest.approx(EMG2POSE_RATE_HZ)
    assert session.num_channels == 16 and session.channel_names[15] == "ch16"
    np.testing.assert_array_equal(session.frame_time, rows["time"][::33])  # 60.6 Hz
    failed = (session.frame_time >= rows["time"][1000]) & (
        session.frame_time < rows["time"][1500]
    )
    np.testing.assert_array_equal(session.label_valid, ~failed)
    np.testing.assert_array_equal(
        session.joint_angles[~failed], rows["joint_angles"][::33][~failed]
    )
    dataset = WindowDataset(
        [session],
        400,
        100,
        FilterConfig(),
        fit_normalization([session], FilterConfig()),
    )
    assert dataset[0]["emg"].shape == (400, 16)
    assert not np.isin(dataset.window_frame, np.flatnonzero(failed)).any()


def test_a_left_hand_is_mirrored(tmp_path):
    write_real_emg2pose(tmp_path / "left.h5", side="left")
    write_real_emg2pose(tmp_path / "right.h5", side="right")
    left, right = (
        read_emg2pose(tmp_path / "left.h5"),
        read_emg2pose(tmp_path / "right.h5"),
    )
    assert left.handedness == "left"
    valid = right.label_valid
    np.testing.assert_allclose(
        left.joints_mm[valid], right.joints_mm[valid] * [-1, 1, 1], atol=1e-4
    )


def test_missing_parts_are_named(tmp_path):
    with h5py.File(tmp_path / "empty.h5", "w") as h5:
        h5.create_group("other")
    with pytest.raises(DataError, match="no '/emg2pose' group"):
        read_emg2pose(tmp_path / "empty.h5")
    with h5py.File(tmp_path / "fields.h5", "w") as h5:
        rows = np.zeros(10, [("time", "f8"), ("emg", "f4", (16,))])
        h5.create_group("emg2pose").create_dataset("timeseries", data=rows)
    with pytest.raises(DataError, match=r"lacks fields \['joint_angles'\]"):
        read_emg2pose(tmp_path / "fields.h5")
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.h5"):
        read_emg2pose(tmp_path / "junk.h5")
