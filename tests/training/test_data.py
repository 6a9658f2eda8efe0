import dataclasses

import numpy as np
import pytest
import torch

from labeling.kinematics import angles_to_mano_pose, axis_angle_to_matrix
from recorder.session_file import read_session
from tests.training.sessions import (
    labeled_recording,
    unlabeled,
    with_channels,
    with_no_valid_labels,
    without_labels,
    write_labeled_session,
    write_recording,
)
from training.data import (
    DataError,
    InterpolationWarning,
    WindowDataset,
    check_compatible,
    fit_normalization,
    from_recording,
    load_session,
    random_window_split,
    split_sessions,
    window_targets,
)
from training.preprocessing import FilterConfig, filter_emg

WINDOW_SAMPLES = 100  # 200 ms at 500 Hz
STRIDE_SAMPLES = 25  # 50 ms


@pytest.fixture(scope="module")
def recording():
    return labeled_recording(seconds=6.0)


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """Subject 0: sessions 0-2; subject 1: session 0."""
    folder = tmp_path_factory.mktemp("sessions")
    specs = [(0, 0), (0, 1), (0, 2), (1, 0)]
    return [write_labeled_session(folder, 6.0, subject, session)
            for subject, session in specs]  # fmt: skip


@pytest.fixture(scope="module")
def sessions(paths):
    return [load_session(path) for path in paths]


def dataset_of(sessions, normalization=None):
    normalization = normalization or fit_normalization(sessions, FilterConfig())
    return WindowDataset(
        sessions, WINDOW_SAMPLES, STRIDE_SAMPLES, FilterConfig(), normalization
    )


def test_a_session_file_loads_with_its_names_and_hand_frame_labels(sessions, paths):
    session = sessions[1]
    assert session.name == "simulated-0-1" and session.subject == "simulated-0"
    assert session.num_channels == 8 and session.sampling_rate_hz == 500.0
    assert session.emg.dtype == np.float32 and session.joints_mm.shape[1:] == (21, 3)
    assert session.joint_angles.shape == (len(session.frame_time), 20)
    assert np.all(session.joints_mm[:, 0] == 0.0)
    assert 0.8 < session.label_valid.mean() < 1.0  # failed detections are invalid
    assert load_session(paths[1], name="mine").name == "mine"


def test_stored_joints_are_rotated_back_into_the_hand_frame(recording):
    orient = np.array([0.3, -1.1, 0.6])
    rotation = axis_angle_to_matrix(orient)
    turned = dataclasses.replace(
        recording,
        joints=(recording.joints @ rotation.T).astype(np.float32),
        pose=angles_to_mano_pose(recording.joint_angles, orient),
    )
    session = from_recording(turned, "turned")
    np.testing.assert_allclose(session.joints_mm, recording.joints, atol=1e-3)


def test_angles_come_from_the_joints_when_the_file_has_none(recording):
    without_angles = dataclasses.replace(recording, joint_angles=None)
    session = from_recording(without_angles, "a")
    valid = session.label_valid
    np.testing.assert_allclose(
        session.joint_angles[valid], recording.joint_angles[valid], atol=1e-4
    )
    assert np.isnan(session.joint_angles[~valid]).all()


def test_nan_joints_are_never_valid(recording):
    joints = recording.joints.copy()
    joints[10] = np.nan
    session = from_recording(dataclasses.replace(recording, joints=joints), "a")
    assert not session.label_valid[10]


@pytest.mark.parametrize(
    "spoil, words",
    [
        (without_labels, "no label track"),
        (unlabeled, "label it first"),
        (with_no_valid_labels, "none of its"),
    ],
)
def test_unusable_sessions_are_refused_by_name(recording, tmp_path, spoil, words):
    path = write_recording(tmp_path, "broken", spoil(recording))
    # named by its session attribute
    with pytest.raises(DataError, match=f"session simulated-0-0: .*{words}"):
        load_session(path)


def test_an_unreadable_file_is_named(tmp_path):
    path = tmp_path / "garbage.h5"
    path.write_bytes(b"not hdf5 at all")
    with pytest.raises(DataError, match="garbage.h5"):
        load_session(path)
    with pytest.raises(DataError, match="missing.h5"):
        load_session(tmp_path / "missing.h5")


def test_sessions_with_other_channel_counts_are_incompatible(recording):
    eight = from_recording(recording, "a")
    sixteen = from_recording(with_channels(recording, 16), "b")
    with pytest.raises(DataError, match="session b has 16 channels, a has 8"):
        check_compatible([eight, sixteen])
    slower = dataclasses.replace(eight, name="c", sampling_rate_hz=250.0)
    with pytest.raises(DataError, match="session c .* 250 Hz"):
        check_compatible([eight, slower])


def test_windows_end_on_a_valid_label_within_half_a_frame(sessions):
    session = sessions[0]
    ends, frames = window_targets(session, WINDOW_SAMPLES, STRIDE_SAMPLES)
    assert ends.min() >= WINDOW_SAMPLES - 1 and ends.max() < len(session.emg)
    assert np.all(np.diff(ends) % STRIDE_SAMPLES == 0)
    assert session.label_valid[frames].all()
    frame_period_s = 1 / 30
    offset_s = np.abs(session.frame_time[frames] - session.emg_time[ends])
    assert offset_s.max() <= frame_period_s / 2 + 1e-9
    all_ends = np.arange(WINDOW_SAMPLES - 1, len(session.emg), STRIDE_SAMPLES)
    assert len(ends) < len(all_ends)  # windows at failed detections left out


def test_invalid_frames_never_reach_the_dataset(sessions):
    session = sessions[0]
    valid = session.label_valid.copy()
    valid[60:120] = False  # two seconds without a label
    dataset = dataset_of([dataclasses.replace(session, label_valid=valid)])
    assert not np.isin(dataset.window_frame, np.flatnonzero(~valid)).any()
    end_times_s = session.emg_time[dataset.window_end]
    gap = (end_times_s > session.frame_time[61]) & (
        end_times_s < session.frame_time[119]
    )
    assert not gap.any() and len(dataset) > 50


def test_items_are_filtered_normalized_windows_with_their_labels(sessions):
    dataset = dataset_of(sessions[:2])
    index = len(dataset) - 1  # in the second session
    item = dataset[index]
    session_index, end = dataset.window_session[index], dataset.window_end[index]
    session = sessions[session_index]
    assert item["session"] == 1 and item["emg"].shape == (WINDOW_SAMPLES, 8)
    assert item["emg"].dtype == torch.float32
    filtered = filter_emg(session.emg, 500.0, FilterConfig())
    expected = dataset.normalization.apply(filtered)[end + 1 - WINDOW_SAMPLES : end + 1]
    np.testing.assert_array_equal(item["emg"].numpy(), expected)
    frame = dataset.window_frame[index]
    np.testing.assert_array_equal(item["joints"].numpy(), session.joints_mm[frame])
    np.testing.assert_array_equal(item["angles"].numpy(), session.joint_angles[frame])
    assert dataset.num_channels == 8 and dataset.sampling_rate_hz == 500.0


def test_windows_stay_in_time_order_per_session_and_batch(sessions):
    dataset = dataset_of(sessions[:2])
    for index in (0, 1):
        ends = dataset.window_end[dataset.window_session == index]
        assert len(ends) > 0 and np.all(np.diff(ends) > 0)
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=16)))
    assert batch["emg"].shape == (16, WINDOW_SAMPLES, 8)  # (B, T, C)
    assert batch["joints"].shape == (16, 21, 3) and batch["angles"].shape == (16, 20)


def test_normalization_depends_only_on_the_sessions_it_is_fitted_on(sessions):
    train, test = sessions[:2], sessions[2]
    louder = dataclasses.replace(test, emg=test.emg * 10)
    config = FilterConfig()
    alone = fit_normalization(train, config)
    np.testing.assert_array_equal(alone.std, fit_normalization(train, config).std)
    assert not np.allclose(alone.std, fit_normalization([*train, louder], config).std)
    # a test set normalized with the training statistics is not unit-variance
    test_set = dataset_of([louder], normalization=alone)
    windows = torch.stack([test_set[i]["emg"] for i in range(len(test_set))])
    assert windows.std() > 5.0


def test_session_holdout_defaults_to_the_last_session(sessions):
    train, test = split_sessions(sessions)
    assert [s.name for s in test] == ["simulated-1-0"] and len(train) == 3
    train, test = split_sessions(sessions, held_out=["simulated-0-1"])
    assert [s.name for s in test] == ["simulated-0-1"]
    assert "simulated-0-1" not in [s.name for s in train]


def test_subject_holdout_puts_all_of_a_subjects_sessions_in_test(sessions):
    train, test = split_sessions(sessions, "subject", ["simulated-0"])
    assert [s.name for s in test] == ["simulated-0-0", "simulated-0-1", "simulated-0-2"]
    assert {s.subject for s in train} == {"simulated-1"}


@pytest.mark.parametrize(
    "holdout, held_out, words",
    [
        ("session", ["nope"], "unknown sessions"),
        ("subject", ["simulated-0", "simulated-1"], "no training sessions"),
        ("frames", None, "holdout must be"),
    ],
)
def test_impossible_splits_are_refused(sessions, holdout, held_out, words):
    with pytest.raises(DataError, match=words):
        split_sessions(sessions, holdout, held_out)


def test_a_single_session_cannot_be_split(sessions):
    with pytest.raises(DataError, match="at least two"):
        split_sessions(sessions[:1])


def test_random_window_split_warns_that_it_measures_interpolation(sessions):
    dataset = dataset_of(sessions[:1])
    with pytest.warns(InterpolationWarning, match="interpolation"):
        train, test = random_window_split(dataset, 0.25, seed=0)
    assert len(train) + len(test) == len(dataset)
    assert len(test) == round(0.25 * len(dataset))
    assert not set(train.indices) & set(test.indices)
    with pytest.warns(InterpolationWarning):
        _, again = random_window_split(dataset, 0.25, seed=0)
    assert again.indices == test.indices


def test_file_round_trip_keeps_the_raw_emg(paths):
    recording = read_session(paths[0])
    np.testing.assert_array_equal(load_session(paths[0]).emg, recording.emg)
