"""emg2pose metrics on examples worked out by hand."""

import numpy as np
import pytest

from labeling.kinematics import ANGLE_NAMES, rest_joints_mm
from training.emg2pose_metrics import (
    HAND_MODEL_NOTE,
    angular_errors_deg,
    emg2pose_scores,
    landmark_distances_mm,
)


def angles_with(**values_rad) -> np.ndarray:
    """(1, 20) angles: zero but for the named ones."""
    angles = np.zeros((1, 20))
    for name, value in values_rad.items():
        angles[0, ANGLE_NAMES.index(name)] = value
    return angles


def test_angular_error_by_finger_and_joint_group():
    true = np.zeros((2, 20))
    # window 0: thumb CMC abduction off by 10 deg; window 1: index DIP off by 20 deg
    pred = np.concatenate(
        [
            angles_with(thumb_cmc_abduction=np.radians(10)),
            angles_with(index_dip_flexion=-np.radians(20)),
        ]
    )
    errors = angular_errors_deg(pred, true)
    # 30 degrees over 2 windows x 20 angles
    assert errors["angular_error_deg"] == pytest.approx(30 / 40)
    per_finger = errors["per_finger_angular_error_deg"]
    assert per_finger["thumb"] == pytest.approx(10 / 8)  # 2 windows x 4 angles
    assert per_finger["index"] == pytest.approx(20 / 8)
    assert per_finger["middle"] == per_finger["ring"] == per_finger["pinky"] == 0.0
    per_group = errors["per_group_angular_error_deg"]
    # proximal: abduction + flexion of 5 fingers = 10 angles; mid, distal: 5 each
    assert per_group["proximal"] == pytest.approx(10 / 20)
    assert per_group["mid"] == 0.0
    assert per_group["distal"] == pytest.approx(20 / 10)


def test_a_right_angle_at_the_index_dip_moves_only_its_tip():
    """The tip turns 90 degrees about the DIP: it moves by the chord sqrt(2) x the
    distal bone's length; no other landmark moves."""
    bone_mm = np.linalg.norm(rest_joints_mm()[8] - rest_joints_mm()[7])
    chord_mm = np.sqrt(2) * bone_mm
    scores = landmark_distances_mm(
        angles_with(index_dip_flexion=np.pi / 2), np.zeros((1, 20))
    )
    assert scores["fingertip_distance_mm"] == pytest.approx(chord_mm / 5, rel=1e-5)
    # 15 landmarks move with the angles (not the wrist, thumb CMC and 4 MCPs)
    assert scores["landmark_distance_mm"] == pytest.approx(chord_mm / 15, rel=1e-5)
    per_finger = scores["per_finger_landmark_distance_mm"]
    assert per_finger["index"] == pytest.approx(chord_mm / 4, rel=1e-5)
    assert per_finger["thumb"] == per_finger["pinky"] == 0.0


def test_perfect_predictions_score_zero_and_reports_name_the_hand_model():
    rng = np.random.default_rng(0)
    angles = rng.uniform(-0.2, 1.0, (5, 20))
    scores = emg2pose_scores(angles, angles)
    assert scores["angular_error_deg"] == 0.0
    assert scores["landmark_distance_mm"] == pytest.approx(0.0, abs=1e-4)
    assert scores["windows"] == 5
    assert scores["hand_model"] == HAND_MODEL_NOTE
    assert "this product's built-in hand model" in HAND_MODEL_NOTE


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"\(windows, 20\)"):
        angular_errors_deg(np.zeros((3, 21)), np.zeros((3, 21)))
    with pytest.raises(ValueError, match="angle shapes differ"):
        landmark_distances_mm(np.zeros((3, 20)), np.zeros((2, 20)))
    with pytest.raises(ValueError, match="no windows"):
        emg2pose_scores(np.zeros((0, 20)), np.zeros((0, 20)))
