"""The streaming IK's inner loop on a per-frame linearisation of the hand model.

Frame to frame a hand moves little, so around the warm start θ0 the joints are
J(θ) ≈ J(θ0) + Jac (θ - θ0), with Jac (63, 45) from one batched finite-difference
pass. On that model the gradient of the IK loss has a closed form, so the fixed
Adam budget runs as a few small numpy operations per step (no autograd graph),
which keeps a 15-step frame within a few milliseconds on a laptop CPU. The residual
and the returned joints always come from the exact model.
"""

from __future__ import annotations

import numpy as np
import torch

STEP_RAD = 1e-6  # finite-difference step, float64
BONE_PARENTS = np.array(
    [0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19]
)
ADAM_BETAS = (0.9, 0.999)


def joints_and_jacobian(
    model, finger_pose: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(45,) finger pose -> joints (21, 3) mm and d joints / d pose (63, 45)."""
    poses = np.zeros((46, 48))
    poses[:, 3:] = finger_pose
    poses[1:, 3:] += STEP_RAD * np.eye(45)
    with torch.no_grad():
        joints = model.joints(torch.tensor(poses, dtype=torch.float64)).numpy()
    jacobian = (joints[1:] - joints[0]).reshape(45, 63).T / STEP_RAD
    return joints[0], jacobian


def _limit_gradient(finger_pose: np.ndarray, limit_tables) -> np.ndarray:
    """Gradient (45,) of the joint-limit penalty (see hand_model); `limit_tables` is
    (right-hand tables, (45,) mirror signs of this hand)."""
    limits, mirror = limit_tables
    finger_pose = mirror * finger_pose
    components = np.einsum("jik,jk->ji", limits["split"], finger_pose.reshape(15, 3))
    excess = np.maximum(components - limits["high"], 0) - np.maximum(
        limits["low"] - components, 0
    )
    gradient = 2.0 * np.einsum("jik,ji->jk", limits["split"], excess).reshape(45)
    return mirror * gradient


def _joint_gradient(joints_mm, aligned_mm, bone_directions, config) -> np.ndarray:
    """Gradient (21, 3) of the position and bone-direction terms w.r.t. the joints."""
    position = 2.0 * (joints_mm - aligned_mm) / config.position_unit_mm**2
    bones = joints_mm[1:] - joints_mm[BONE_PARENTS]  # (20, 3)
    length = np.linalg.norm(bones, axis=-1, keepdims=True).clip(1e-9)
    unit = bones / length
    cosine = (unit * bone_directions).sum(-1, keepdims=True)
    bone_gradient = -(bone_directions - cosine * unit) / length  # d(1 - cos)/d bone
    gradient = config.position_weight * position
    direction = config.direction_weight * bone_gradient
    gradient[1:] += direction
    np.add.at(gradient, BONE_PARENTS, -direction)
    return gradient


def adam_steps(
    start, previous, model_linear, targets, limits, config, state
) -> np.ndarray:
    """Run config.iterations Adam steps from `start` (45,) on the linearised model;
    `state` holds Adam's moments and step count across frames."""
    base_joints, jacobian = model_linear
    finger_pose = start.copy()
    beta1, beta2 = ADAM_BETAS
    for _ in range(config.iterations):
        joints_mm = base_joints + (jacobian @ (finger_pose - start)).reshape(21, 3)
        gradient = jacobian.T @ _joint_gradient(joints_mm, *targets, config).reshape(63)
        gradient += 2.0 * config.regularization_weight * finger_pose
        gradient += 2.0 * config.smoothness_weight * (finger_pose - previous)
        gradient += config.joint_limit_weight * _limit_gradient(finger_pose, limits)
        state["step"] += 1
        state["m"] = beta1 * state["m"] + (1 - beta1) * gradient
        state["v"] = beta2 * state["v"] + (1 - beta2) * gradient * gradient
        m_hat = state["m"] / (1 - beta1 ** state["step"])
        v_hat = state["v"] / (1 - beta2 ** state["step"])
        finger_pose -= config.learning_rate * m_hat / (np.sqrt(v_hat) + 1e-8)
    return finger_pose
