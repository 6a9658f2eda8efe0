import json

import numpy as np
import pytest

from labeling.kinematics import rest_joints_mm
from training import metrics


@pytest.fixture
def true_joints():
    return np.repeat(rest_joints_mm()[None], 4, axis=0)  # (4, 21, 3) mm


def test_a_3_4_0_offset_everywhere_is_5_mm(true_joints):
    pred = true_joints + np.array([3.0, 4.0, 0.0])
    assert metrics.mpjpe_mm(pred, true_joints) == pytest.approx(5.0)
    assert metrics.fingertip_error_mm(pred, true_joints) == pytest.approx(5.0)


def test_one_wrong_fingertip_shows_in_its_joint_finger_and_tips(true_joints):
    pred = true_joints.copy()
    pred[:, 8, 2] += 21.0  # the index tip, 21 mm off in every window
    per_joint = metrics.per_joint_mpjpe_mm(pred, true_joints)
    assert per_joint[8] == pytest.approx(21.0)
    assert sum(per_joint) == pytest.approx(21.0)
    assert metrics.mpjpe_mm(pred, true_joints) == pytest.approx(1.0)
    assert metrics.fingertip_error_mm(pred, true_joints) == pytest.approx(21.0 / 5)
    per_finger = metrics.per_finger_mpjpe_mm(pred, true_joints)
    assert list(per_finger) == ["thumb", "index", "middle", "ring", "pinky"]
    assert per_finger["index"] == pytest.approx(21.0 / 4)
    assert per_finger["thumb"] == per_finger["pinky"] == 0.0


def test_angle_error_is_in_degrees():
    true = np.zeros((3, 20))
    pred = true + np.radians(2.0)
    pred[0, 0] = -np.radians(8.0)
    expected = (2.0 * 59 + 8.0) / 60
    assert metrics.angle_mae_deg(pred, true) == pytest.approx(expected)


def test_steady_motion_has_no_jitter(true_joints):
    sequence = rest_joints_mm()[None] + np.arange(10)[:, None, None] * 2.0
    assert metrics.jitter_mm(sequence) == pytest.approx(0.0)


def test_a_one_window_spike_is_jitter():
    sequence = np.zeros((5, 21, 3))
    sequence[2, :, 0] = 3.0  # second differences 3, -6, 3 mm
    assert metrics.jitter_mm(sequence) == pytest.approx(4.0)
    assert metrics.jitter_mm(sequence[:2]) == 0.0  # nothing to measure


def test_jitter_never_crosses_from_one_sequence_to_the_next():
    steady = np.arange(6)[:, None, None] * np.ones((6, 21, 3))
    pred = np.concatenate([steady, steady + 50.0])  # a jump between sequences
    ids = np.repeat([0, 1], 6)
    scores = metrics.evaluate(pred, pred, np.zeros((12, 20)), np.zeros((12, 20)), ids)
    assert scores["jitter_mm"] == pytest.approx(0.0)
    assert metrics.jitter_mm(pred) > 0.0


def test_evaluate_gives_every_metric_as_plain_json(true_joints):
    pred = true_joints + 1.0
    angles = np.zeros((4, 20))
    scores = metrics.evaluate(pred, true_joints, angles + 0.01, angles, np.zeros(4))
    assert scores["mpjpe_mm"] == pytest.approx(np.sqrt(3.0))
    assert len(scores["per_joint_mpjpe_mm"]) == 21
    assert len(scores["per_angle_mae_deg"]) == 20
    assert scores["windows"] == 4
    for key in ("per_finger_mpjpe_mm", "fingertip_error_mm", "angle_mae_deg"):
        assert key in scores
    assert json.loads(json.dumps(scores)) == scores


def test_the_baseline_predicts_the_training_mean_not_the_test_mean():
    rest = rest_joints_mm()
    train_joints = np.stack([rest, rest + [0.0, 0.0, 10.0]])  # mean: +5 mm in z
    train_angles = np.stack([np.zeros(20), np.full(20, 0.2)])  # mean: 0.1 rad
    test_joints = np.stack([rest, rest])
    test_angles = np.zeros((2, 20))
    scores = metrics.mean_pose_baseline(
        train_joints, train_angles, test_joints, test_angles, np.zeros(2)
    )
    assert scores["mpjpe_mm"] == pytest.approx(5.0)
    assert scores["angle_mae_deg"] == pytest.approx(np.degrees(0.1))
    assert scores["jitter_mm"] == 0.0


def test_mismatched_shapes_fail_loudly(true_joints):
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.mpjpe_mm(true_joints[:2], true_joints)
