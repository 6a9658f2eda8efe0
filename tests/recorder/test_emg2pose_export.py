"""Export to the emg2pose HDF5 layout."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from recorder.emg2pose_format import export_emg2pose
from tests.recorder.synthetic import (
    joint_angle_ramp,
    make_emg_recording,
    make_labelled_recording,
)


def exported(tmp_path, recording):
    export_emg2pose(recording, tmp_path / "e.h5")
    with h5py.File(tmp_path / "e.h5") as h5:
        group = h5["emg2pose"]
        return (
            group["timeseries"][()],
            group["joint_angles_valid"][()],
            dict(group.attrs),
            dict(group["timeseries"].attrs),
        )


def test_it_writes_the_compound_timeseries(tmp_path):
    recording = make_labelled_recording()
    rows, _, _, units = exported(tmp_path, recording)
    assert rows.dtype.names == ("time", "joint_angles", "emg")
    assert rows.dtype["time"] == np.float64
    assert rows.dtype["joint_angles"].base == np.float32
    assert rows.dtype["joint_angles"].shape == (20,)
    assert rows.dtype["emg"].shape == (8,)
    assert rows.shape == (1000,)
    np.testing.assert_array_equal(rows["time"], recording.emg_time)
    np.testing.assert_array_equal(rows["emg"], recording.emg)
    assert units["joint_angles_units"] == "rad"
    assert units["emg_units"] == "uV"


def test_it_writes_metadata_as_group_attributes(tmp_path):
    recording = make_labelled_recording()
    _, _, attrs, _ = exported(tmp_path, recording)
    assert attrs["session"] == "s001"
    assert attrs["user"] == "alice"
    assert attrs["side"] == "right"
    assert attrs["stage"] == "gestures-v1"
    assert attrs["sample_rate"] == 500.0
    assert attrs["num_channels"] == 8
    assert list(attrs["channel_names"]) == list(recording.attrs.channel_names)
    assert attrs["start"] == recording.emg_time[0]
    assert attrs["end"] == recording.emg_time[-1]
    assert "emg-hand-session" in attrs["source"]


def test_it_interpolates_valid_labels_onto_emg_times(tmp_path):
    recording = make_labelled_recording()
    rows, valid, _, _ = exported(tmp_path, recording)
    # The synthetic angles are linear in time, so interpolation is exact.
    expected = joint_angle_ramp(rows["time"][valid])
    np.testing.assert_allclose(rows["joint_angles"][valid], expected, atol=1e-5)
    # One invalid frame in five leaves 2 x 33 ms between valid frames: still bridged.
    assert valid.mean() > 0.9


def test_it_leaves_rows_without_a_near_valid_label_nan_and_masked(tmp_path):
    recording = make_labelled_recording()
    # A lost hand for ~0.3 s in the middle of the session.
    lost = (recording.frame_time > 1000.8) & (recording.frame_time < 1001.1)
    recording.label_valid[lost] = False
    rows, valid, _, _ = exported(tmp_path, recording)
    in_hole = (rows["time"] > 1000.85) & (rows["time"] < 1001.05)
    assert not valid[in_hole].any()
    assert np.isnan(rows["joint_angles"][~valid]).all()
    assert np.isfinite(rows["joint_angles"][valid]).all()
    # Before the first label frame there is nothing to interpolate from either.
    assert not valid[rows["time"] < recording.frame_time[0]].any()


def test_without_a_label_track_all_angles_are_nan_and_masked(tmp_path):
    rows, valid, attrs, _ = exported(tmp_path, make_emg_recording())
    assert valid.dtype == bool and valid.shape == (1000,)
    assert not valid.any()
    assert np.isnan(rows["joint_angles"]).all()
    assert attrs["num_channels"] == 8


def test_it_refuses_an_invalid_recording_and_writes_nothing(tmp_path):
    recording = make_emg_recording()
    recording.emg[0, 0] = np.nan
    with pytest.raises(ValueError, match="emg"):
        export_emg2pose(recording, tmp_path / "e.h5")
    assert list(tmp_path.iterdir()) == []
