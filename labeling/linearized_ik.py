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


def rodrigues(axis_angle: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angles -> (..., 3, 3) rotations, as hand_model's."""
    angle_sq = (axis_angle * axis_angle).sum(-1)[..., None, None]
    angle = np.sqrt(angle_sq + 1e-12)
    sin_over_angle = np.sin(angle) / angle
    half_sin = np.sin(0.5 * angle) / angle
    x, y, z = np.moveaxis(axis_angle, -1, 0)
    zero = np.zeros_like(x)
    skew = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1)
    skew = skew.reshape(axis_angle.shape + (3,))
    outer = axis_angle[..., :, None] * axis_angle[..., None, :]
    eye = np.eye(3)
    return (
        eye
        + sin_over_angle * skew
        + 2.0 * half_sin * half_sin * (outer - angle_sq * eye)
    )


def matrix_to_axis_angle(rotation: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> (3,) axis-angle, as hand_model's."""
    cosine = np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cosine)
    skew = np.array(
        [
            rotation[2, 1] - rotation[1, 2],
            rotation[0, 2] - rotation[2, 0],
            rotation[1, 0] - rotation[0, 1],
        ]
    )
    sin = np.sin(angle)
    scale = angle / max(sin, 1e-6) if sin > 1e-6 else 1.0
    return 0.5 * skew * scale


def align(source: np.ndarray, target: np.ndarray, method: str):
    """One frame of `alignment.align`: (21, 3) source onto target -> (scale,
    rotation (3, 3), translation (3,))."""
    source_mean = source.mean(0)
    target_mean = target.mean(0)
    source_centred = source - source_mean
    covariance = (target - target_mean).T @ source_centred
    u, singular, vh = np.linalg.svd(covariance)
    if np.linalg.det(u @ vh) < 0:
        u = u * np.array([1.0, 1.0, -1.0])
        singular = singular * np.array([1.0, 1.0, -1.0])
    rotation = u @ vh
    scale = 1.0
    if method == "umeyama_scale":
        variance = (source_centred * source_centred).sum()
        scale = singular.sum() / max(variance, 1e-12)
    return scale, rotation, target_mean - scale * (rotation @ source_mean)


class NumpyHand:
    """The built-in hand model's forward kinematics (`hand_model.HandModel`) in
    float64 numpy, for the streaming path where torch's per-call overhead dominates:
    (N, 45) finger poses (zero global orient) -> (N, 21, 3) joints, mm."""

    def __init__(self, model):
        self.is_right = model.is_right
        self.base = model.base_mm.detach().double().numpy()  # (5, 3)
        self.segments = model.segments_mm.detach().double().numpy()  # (5, 3, 3)
        self.slots = (model.slots - 1).numpy()  # (5, 3)
        self.sign = np.ones(45) if self.is_right else np.tile([1.0, -1.0, -1.0], 15)
        # joint k (of 4 per finger) moves with segment s (of 3) when k > s
        self._downstream = (np.arange(4)[None] > np.arange(3)[:, None])[
            None, :, None, :, None
        ]
        # finger-order column 9 f + 3 s + c -> MANO column 3 slot + c
        mano_of_finger = (3 * self.slots[..., None] + np.arange(3)).reshape(45)
        self._mano_columns = np.argsort(mano_of_finger)

    def joints(self, finger_poses: np.ndarray) -> np.ndarray:
        count = finger_poses.shape[0]
        pose = (finger_poses * self.sign).reshape(count, 15, 3)
        rotations = rodrigues(pose)[:, self.slots]  # (N, 5, 3, 3, 3)
        chain = rotations[:, :, 0]
        joints = np.zeros((count, 21, 3))
        fingers = joints[:, 1:].reshape(count, 5, 4, 3)
        fingers[:, :, 0] = self.base
        for segment in range(3):
            if segment:
                chain = chain @ rotations[:, :, segment]
            bone = (chain @ self.segments[:, segment, :, None])[..., 0]
            fingers[:, :, segment + 1] = fingers[:, :, segment] + bone
        joints[:, 1:] = fingers.reshape(count, 20, 3)
        if not self.is_right:
            joints[..., 0] *= -1.0
        return joints

    def joints_and_jacobian(self, finger_pose: np.ndarray):
        """(45,) finger pose -> joints (21, 3) mm and d joints / d pose (63, 45), in
        closed form: for finger joint s with chain rotation W_s at point o_s,
        d joint_k / dθ_s = (W_s Jr(θ_s) δ) x (joint_k - o_s) for the joints k past
        it, Jr being the right Jacobian of SO(3)."""
        pose = (finger_pose * self.sign).reshape(15, 3)
        rotations, right_jacobian = _rotations_and_right_jacobians(pose)
        rotations = rotations[self.slots]  # (5, 3, 3, 3) finger, segment
        chain = np.empty((5, 3, 3, 3))
        chain[:, 0] = rotations[:, 0]
        chain[:, 1] = chain[:, 0] @ rotations[:, 1]
        chain[:, 2] = chain[:, 1] @ rotations[:, 2]
        points = np.empty((5, 4, 3))
        points[:, 0] = self.base
        points[:, 1:] = (chain @ self.segments[..., None])[..., 0]
        points = points.cumsum(1)
        # world axes (5, 3 segment, 3 column, 3 xyz) of the three pose components
        axes = (chain @ right_jacobian[self.slots]).swapaxes(-1, -2)[:, :, :, None]
        offsets = (points[:, None] - points[:, :3, None])[:, :, None]  # (5,3,1,4,3)
        turned = np.empty((5, 3, 3, 4, 3))  # axes x offsets, finger, s, c, k, xyz
        for out, first, second in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
            turned[..., out] = (
                axes[..., first] * offsets[..., second]
                - axes[..., second] * offsets[..., first]
            )
        turned *= self._downstream  # only the joints past segment s move
        jacobian = np.zeros((21, 3, 45))
        jacobian[1:] = self._scatter(turned)
        joints = np.zeros((21, 3))
        joints[1:] = points.reshape(20, 3)
        if not self.is_right:
            joints[:, 0] *= -1.0
            jacobian[:, 0] *= -1.0
            jacobian *= self.sign
        return joints, jacobian.reshape(63, 45)

    def _scatter(self, turned: np.ndarray) -> np.ndarray:
        """(5, 3 s, 3 c, 4 k, 3 xyz) -> (20, 3, 45) d joint / d MANO pose."""
        blocks = np.zeros((5, 4, 3, 5, 9))
        fingers = np.arange(5)
        blocks[fingers, :, :, fingers] = turned.transpose(0, 3, 4, 1, 2).reshape(
            5, 4, 3, 9
        )
        return blocks.reshape(20, 3, 45)[..., self._mano_columns]


def _rotations_and_right_jacobians(axis_angle: np.ndarray):
    """(N, 3) axis-angles -> rotations (N, 3, 3) and right Jacobians of SO(3)
    Jr = I - a K + b K², a = (1 - cos θ)/θ², b = (θ - sin θ)/θ³, K = [θ]x."""
    angle_sq = (axis_angle * axis_angle).sum(-1)[:, None, None]
    angle = np.sqrt(angle_sq + 1e-12)
    sin_over_angle = np.sin(angle) / angle
    half_sin = np.sin(0.5 * angle) / angle
    a = 2.0 * half_sin * half_sin
    series = 1.0 / 6.0 - angle_sq / 120.0 + angle_sq * angle_sq / 5040.0
    b = np.where(
        angle < 0.3, series, (1.0 - sin_over_angle) / np.maximum(angle_sq, 1e-12)
    )
    x, y, z = axis_angle.T
    zero = np.zeros_like(x)
    skew = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(-1, 3, 3)
    skew_sq = axis_angle[:, :, None] * axis_angle[:, None, :] - angle_sq * np.eye(3)
    rotations = np.eye(3) + sin_over_angle * skew + a * skew_sq
    return rotations, np.eye(3) - a * skew + b * skew_sq


def _bone_matrix() -> np.ndarray:
    """(60, 63) map from flattened joints to flattened parent-to-child bones."""
    incidence = np.zeros((20, 21))
    incidence[np.arange(20), np.arange(1, 21)] = 1.0
    incidence[np.arange(20), BONE_PARENTS] -= 1.0
    return np.kron(incidence, np.eye(3))


BONE_MATRIX = _bone_matrix()


def limit_matrix(limit_tables) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The joint-limit split as one (45, 45) matrix with this hand's mirror signs
    folded in, and the flattened (45,) low and high limits."""
    limits, mirror = limit_tables
    split = np.zeros((45, 45))
    for joint in range(15):
        block = slice(3 * joint, 3 * joint + 3)
        split[block, block] = limits["split"][joint]
    return split * mirror, limits["low"].reshape(45), limits["high"].reshape(45)


def adam_steps_precomputed(
    start, previous, model_linear, targets, limit_terms, config, state
) -> np.ndarray:
    """`adam_steps` with the linear parts folded into per-frame constants: the
    position, regularisation and smoothness gradients are one affine map of the
    pose, the bones are affine in it, and the limit split is one matrix
    (`limit_matrix`), so each step is a few small matrix-vector products. Same
    iterates as `adam_steps` up to rounding."""
    base_joints, jacobian = model_linear
    aligned_mm, bone_directions = targets
    split, low, high = limit_terms
    position_scale = 2.0 * config.position_weight / config.position_unit_mm**2
    position_hessian = position_scale * (jacobian.T @ jacobian)
    regularization = 2.0 * config.regularization_weight
    smoothness = 2.0 * config.smoothness_weight
    # position + regularisation + smoothness gradient: offset + hessian @ pose
    hessian = position_hessian + (regularization + smoothness) * np.eye(45)
    offset = position_scale * (jacobian.T @ (base_joints - aligned_mm).ravel())
    offset -= position_hessian @ start + smoothness * previous
    bone_jacobian = BONE_MATRIX @ jacobian  # (60, 45)
    bone_jacobian_t = np.ascontiguousarray(bone_jacobian.T)
    base_bones = BONE_MATRIX @ base_joints.ravel() - bone_jacobian @ start
    direction_weight = -config.direction_weight
    limit_weight = 2.0 * config.joint_limit_weight
    beta1, beta2 = ADAM_BETAS
    finger_pose = start.copy()
    m, v, step = state["m"].copy(), state["v"].copy(), state["step"]
    ones = np.ones(3)
    for _ in range(config.iterations):
        bones = (bone_jacobian @ finger_pose + base_bones).reshape(20, 3)
        inverse_length = 1.0 / np.maximum(np.sqrt((bones * bones) @ ones), 1e-9)
        scaled = direction_weight * inverse_length  # -λ_dir / length
        cosine = ((bones * bone_directions) @ ones) * inverse_length
        # d(1 - cos)/d bone = -(direction - cos * unit) / length
        bone_gradient = bone_directions * scaled[:, None]
        bone_gradient -= bones * (scaled * cosine * inverse_length)[:, None]
        gradient = hessian @ finger_pose + offset
        gradient += bone_jacobian_t @ bone_gradient.reshape(60)
        if limit_weight:
            components = split @ finger_pose
            excess = components - np.minimum(np.maximum(components, low), high)
            gradient += (limit_weight * excess) @ split
        step += 1
        m *= beta1
        m += (1 - beta1) * gradient
        v *= beta2
        v += (1 - beta2) * (gradient * gradient)
        # Adam's bias corrections folded into the rate and epsilon
        correction = (1 - beta2**step) ** 0.5
        rate = config.learning_rate * correction / (1 - beta1**step)
        finger_pose -= (rate * m) / (np.sqrt(v) + 1e-8 * correction)
    state["m"], state["v"], state["step"] = m, v, step
    return finger_pose


def cold_start(hand, landmarks_mm, limit_terms, config) -> np.ndarray:
    """The streaming cold start (`cold_start_iterations` Adam steps from the flat
    hand at the batched rate, alignment re-estimated every `realign_every` steps)
    on the exact model, with the closed-form Jacobian: (45,) finger pose."""
    split, low, high = limit_terms
    finger_pose = np.zeros(45)
    m, v = np.zeros(45), np.zeros(45)
    beta1, beta2 = ADAM_BETAS
    for step in range(1, config.cold_start_iterations + 1):
        joints_mm, jacobian = hand.joints_and_jacobian(finger_pose)
        if (step - 1) % config.realign_every == 0:
            scale, rotation, shift = align(landmarks_mm, joints_mm, config.alignment)
            aligned = scale * landmarks_mm @ rotation.T + shift
            bones = aligned[1:] - aligned[BONE_PARENTS]
            length = np.sqrt((bones * bones).sum(1, keepdims=True))
            directions = bones / length.clip(1e-9)
        joint_gradient = _joint_gradient(joints_mm, aligned, directions, config)
        gradient = jacobian.T @ joint_gradient.reshape(63)
        gradient += 2.0 * config.regularization_weight * finger_pose
        if config.joint_limit_weight:
            components = split @ finger_pose
            excess = components - np.minimum(np.maximum(components, low), high)
            gradient += (2.0 * config.joint_limit_weight * excess) @ split
        m = beta1 * m + (1 - beta1) * gradient
        v = beta2 * v + (1 - beta2) * gradient * gradient
        correction = (1 - beta2**step) ** 0.5
        rate = config.sequence_learning_rate * correction / (1 - beta1**step)
        finger_pose -= rate * m / (np.sqrt(v) + 1e-8 * correction)
    return finger_pose
