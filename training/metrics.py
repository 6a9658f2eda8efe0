"""Hand-pose metrics: numpy in, plain floats, lists and dicts out (JSON-able).

Shapes: joints (W, 21, 3) mm, MediaPipe order, wrist-relative; angles (W, 20) rad,
ANGLE_NAMES order; W windows. Errors are means over windows (and joints / angles).
"""

from __future__ import annotations

import numpy as np

from labeling.kinematics import FINGERS

FINGERTIPS = (4, 8, 12, 16, 20)
# each finger's 4 joints in MediaPipe order: thumb 1-4, index 5-8, ...
FINGER_JOINTS = {finger: tuple(range(1 + 4 * i, 5 + 4 * i)) for i, finger in
                 enumerate(FINGERS)}  # fmt: skip


def joint_errors_mm(pred_joints, true_joints) -> np.ndarray:
    """(W, 21) Euclidean distance per window and joint, mm."""
    pred = np.asarray(pred_joints, dtype=np.float64)
    true = np.asarray(true_joints, dtype=np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"joint shapes differ: {pred.shape} vs {true.shape}")
    return np.linalg.norm(pred - true, axis=-1)


def mpjpe_mm(pred_joints, true_joints) -> float:
    """Mean per-joint position error over all windows and 21 joints, mm."""
    return float(joint_errors_mm(pred_joints, true_joints).mean())


def per_joint_mpjpe_mm(pred_joints, true_joints) -> list[float]:
    """(21,) mean error of each joint, mm, MediaPipe order."""
    return joint_errors_mm(pred_joints, true_joints).mean(axis=0).tolist()


def per_finger_mpjpe_mm(pred_joints, true_joints) -> dict[str, float]:
    """Mean error over each finger's 4 joints (base to tip), mm; thumb..pinky."""
    errors = joint_errors_mm(pred_joints, true_joints)
    return {
        finger: float(errors[:, list(joints)].mean())
        for finger, joints in FINGER_JOINTS.items()
    }


def fingertip_error_mm(pred_joints, true_joints) -> float:
    """Mean distance of the 5 fingertips, mm."""
    return float(joint_errors_mm(pred_joints, true_joints)[:, FINGERTIPS].mean())


def angle_errors_deg(pred_angles, true_angles) -> np.ndarray:
    """(W, 20) absolute angle error, degrees."""
    pred = np.asarray(pred_angles, dtype=np.float64)
    true = np.asarray(true_angles, dtype=np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"angle shapes differ: {pred.shape} vs {true.shape}")
    return np.degrees(np.abs(pred - true))


def angle_mae_deg(pred_angles, true_angles) -> float:
    """Mean absolute joint-angle error over windows and 20 angles, degrees."""
    return float(angle_errors_deg(pred_angles, true_angles).mean())


def _second_differences_mm(joints_sequence) -> np.ndarray:
    """(W - 2, 21) length of each joint's second difference, mm per step²."""
    joints = np.asarray(joints_sequence, dtype=np.float64)
    second = joints[2:] - 2.0 * joints[1:-1] + joints[:-2]  # (W - 2, 21, 3)
    return np.linalg.norm(second, axis=-1)


def jitter_mm(pred_joints_sequence) -> float:
    """Smoothness of live output: the mean length of each joint's second difference
    between consecutive predictions, mm per step². Input: one sequence's (W, 21, 3)
    joints in time order. 0.0 for fewer than 3 windows (nothing to measure)."""
    second = _second_differences_mm(pred_joints_sequence)
    return float(second.mean()) if second.size else 0.0


def sequence_jitter_mm(pred_joints, sequence_ids) -> float:
    """Jitter pooled over every sequence's ordered run of windows: the second
    differences never cross from one sequence into another."""
    sequence_ids = np.asarray(sequence_ids)
    pieces = [
        _second_differences_mm(np.asarray(pred_joints)[sequence_ids == sequence])
        for sequence in np.unique(sequence_ids)
    ]
    pooled = np.concatenate([piece.ravel() for piece in pieces])
    return float(pooled.mean()) if pooled.size else 0.0


def evaluate(pred_joints, true_joints, pred_angles, true_angles, sequence_ids) -> dict:
    """Every metric of one prediction set. `sequence_ids` (W,): which sequence
    (session) each window belongs to; windows of one sequence in time order."""
    return {
        "mpjpe_mm": mpjpe_mm(pred_joints, true_joints),
        "per_joint_mpjpe_mm": per_joint_mpjpe_mm(pred_joints, true_joints),
        "per_finger_mpjpe_mm": per_finger_mpjpe_mm(pred_joints, true_joints),
        "fingertip_error_mm": fingertip_error_mm(pred_joints, true_joints),
        "angle_mae_deg": angle_mae_deg(pred_angles, true_angles),
        "per_angle_mae_deg": angle_errors_deg(pred_angles, true_angles)
        .mean(axis=0)
        .tolist(),
        "jitter_mm": sequence_jitter_mm(pred_joints, sequence_ids),
        "windows": int(len(np.asarray(true_joints))),
    }


def mean_pose_baseline(
    train_joints, train_angles, test_joints, test_angles, sequence_ids
) -> dict:
    """`evaluate` for the constant prediction of the TRAINING mean pose (mean joints
    and mean angles over the training windows) at every test window."""
    test_joints = np.asarray(test_joints)
    test_angles = np.asarray(test_angles)
    mean_joints = np.asarray(train_joints, dtype=np.float64).mean(axis=0)  # (21, 3)
    mean_angles = np.asarray(train_angles, dtype=np.float64).mean(axis=0)  # (20,)
    return evaluate(
        np.broadcast_to(mean_joints, test_joints.shape), test_joints,
        np.broadcast_to(mean_angles, test_angles.shape), test_angles, sequence_ids,
    )  # fmt: skip
