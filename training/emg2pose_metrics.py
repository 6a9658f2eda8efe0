"""emg2pose's benchmark metrics (001_*), on joint angles.

- Angular error: mean absolute joint-angle error in degrees, overall, per finger
  and per joint group: proximal (CMC/MCP: abduction and flexion), mid (thumb MCP,
  PIP) and distal (thumb IP, DIP).
- Landmark distance: both angle sets go through THIS PRODUCT's built-in hand model
  (labeling.kinematics, MANO conventions and rest proportions), not emg2pose's own
  hand model, and the mean Euclidean distance of the landmarks is taken, in mm.
  As in emg2pose, landmarks that no joint angle can move (the wrist and the finger
  bases, STATIC_LANDMARKS) are left out; they would only dilute the mean.
- Fingertip distance: the same, over the 5 fingertips only.

Shapes: angles (W, 20) rad in ANGLE_NAMES order; W windows. Floats and dicts out.
"""

from __future__ import annotations

import numpy as np

from labeling.kinematics import ANGLE_NAMES, FINGERS, angles_to_mano_pose
from labeling.kinematics import forward_kinematics as hand_model_joints

HAND_MODEL_NOTE = (
    "landmark and fingertip distances are computed through this product's built-in "
    "hand model (MANO conventions), not emg2pose's hand model"
)
ANGLES_PER_FINGER = 4  # abduction, then proximal, mid and distal flexion
# position of each group's angles within a finger's four (see ANGLE_NAMES)
JOINT_GROUPS = {"proximal": (0, 1), "mid": (2,), "distal": (3,)}
# MediaPipe landmarks fixed in the hand frame: wrist, thumb CMC, finger MCPs
STATIC_LANDMARKS = (0, 1, 5, 9, 13, 17)
MOVING_LANDMARKS = tuple(k for k in range(21) if k not in STATIC_LANDMARKS)
FINGERTIPS = (4, 8, 12, 16, 20)
FINGER_LANDMARKS = {
    finger: tuple(range(1 + 4 * index, 5 + 4 * index))
    for index, finger in enumerate(FINGERS)
}


def _angles(values, name: str) -> np.ndarray:
    angles = np.asarray(values, dtype=np.float64)
    if angles.ndim != 2 or angles.shape[1] != len(ANGLE_NAMES):
        raise ValueError(
            f"{name} must be (windows, 20) joint angles, not {angles.shape}"
        )
    return angles


def absolute_angle_errors_deg(pred_angles, true_angles) -> np.ndarray:
    """(W, 20) |pred - true| in degrees."""
    pred, true = (
        _angles(pred_angles, "pred_angles"),
        _angles(true_angles, "true_angles"),
    )
    if pred.shape != true.shape:
        raise ValueError(f"angle shapes differ: {pred.shape} vs {true.shape}")
    return np.degrees(np.abs(pred - true))


def angle_columns(fingers=FINGERS, positions=(0, 1, 2, 3)) -> list[int]:
    """ANGLE_NAMES columns of these fingers' angles at these positions."""
    return [
        ANGLES_PER_FINGER * FINGERS.index(finger) + position
        for finger in fingers
        for position in positions
    ]


def angular_errors_deg(pred_angles, true_angles) -> dict:
    """{"angular_error_deg", "per_finger_angular_error_deg": {finger: deg},
    "per_group_angular_error_deg": {"proximal"|"mid"|"distal": deg}}."""
    errors = absolute_angle_errors_deg(pred_angles, true_angles)
    per_finger = {
        finger: float(errors[:, angle_columns([finger])].mean()) for finger in FINGERS
    }
    per_group = {
        group: float(errors[:, angle_columns(FINGERS, positions)].mean())
        for group, positions in JOINT_GROUPS.items()
    }
    return {
        "angular_error_deg": float(errors.mean()),
        "per_finger_angular_error_deg": per_finger,
        "per_group_angular_error_deg": per_group,
    }


def landmarks_mm(angles) -> np.ndarray:
    """(W, 20) rad -> (W, 21, 3) mm: this product's hand model, wrist at the origin."""
    return hand_model_joints(angles_to_mano_pose(_angles(angles, "angles")))


def landmark_distances_mm(pred_angles, true_angles) -> dict:
    """{"landmark_distance_mm" (moving landmarks), "fingertip_distance_mm",
    "per_finger_landmark_distance_mm": {finger: mm}}, through the hand model."""
    absolute_angle_errors_deg(pred_angles, true_angles)  # checks the shapes
    distances = np.linalg.norm(
        landmarks_mm(pred_angles) - landmarks_mm(true_angles), axis=-1
    )  # (W, 21)
    per_finger = {
        finger: float(distances[:, list(landmarks)].mean())
        for finger, landmarks in FINGER_LANDMARKS.items()
    }
    return {
        "landmark_distance_mm": float(distances[:, list(MOVING_LANDMARKS)].mean()),
        "fingertip_distance_mm": float(distances[:, list(FINGERTIPS)].mean()),
        "per_finger_landmark_distance_mm": per_finger,
    }


def emg2pose_scores(pred_angles, true_angles) -> dict:
    """Every emg2pose metric of one prediction set, with the hand-model note."""
    if len(np.asarray(true_angles)) == 0:
        raise ValueError("there are no windows to score")
    return (
        angular_errors_deg(pred_angles, true_angles)
        | landmark_distances_mm(pred_angles, true_angles)
        | {"windows": len(np.asarray(true_angles)), "hand_model": HAND_MODEL_NOTE}
    )
