import numpy as np
import pytest

from recorder.simulation import ArmbandSimulator, SimulatorConfig
from training.data import from_recording
from training.simulated import simulated_labeled_session, simulated_session_with_truth


def test_truth_labels_are_the_simulated_hand_where_the_camera_saw_it():
    simulated = simulated_session_with_truth(4.0, subject_seed=2, session=1)
    recording, truth = simulated.recording, simulated.truth
    state = ArmbandSimulator(SimulatorConfig(seed=2, session=1)).hand_state(
        recording.frame_time
    )
    np.testing.assert_array_equal(recording.joints, state["joints"])
    np.testing.assert_array_equal(recording.joint_angles, truth.joint_angles)
    detected = ~np.isnan(recording.landmarks).any(axis=(1, 2))
    np.testing.assert_array_equal(recording.label_valid, detected)
    assert recording.attrs.subject == "simulated-2"
    assert recording.attrs.session == "simulated-2-1"


def test_sessions_of_one_subject_differ_but_share_the_layout():
    first = simulated_labeled_session(3.0, subject_seed=0, session=0)
    second = simulated_labeled_session(3.0, subject_seed=0, session=1)
    assert first.emg.shape == second.emg.shape
    assert first.attrs.subject == second.attrs.subject
    assert not np.allclose(first.emg, second.emg)
    assert not np.allclose(first.joint_angles, second.joint_angles)


def test_ik_labels_come_from_the_labeling_pipeline_and_keep_the_truth():
    simulated = simulated_session_with_truth(4.0, subject_seed=1, labels="ik")
    recording, truth = simulated.recording, simulated.truth
    assert recording.ik_error is not None and recording.joint_angles is None
    assert not np.array_equal(recording.joints, truth.joints_mm)
    session = from_recording(recording, "ik")
    valid = session.label_valid
    assert valid.mean() > 0.8
    error_mm = np.linalg.norm(
        session.joints_mm[valid] - truth.joints_mm[valid], axis=-1
    )
    assert error_mm.mean() < 15.0  # IK labels near the truth, not equal to it


def test_unknown_label_kinds_are_refused():
    with pytest.raises(ValueError, match="labels must be one of"):
        simulated_labeled_session(1.0, labels="magic")
