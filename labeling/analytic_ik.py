"""The built-in hand's forward kinematics and IK gradients in closed form.

Batched IK spends its time in these few operations; without autograd, and with
x/y/z first and frames last, it runs several times faster on a CPU (see
`ik._fit_all_frames_analytic`, which uses them). The autograd path in ik.py is the
reference they are tested against.
"""

from __future__ import annotations

import numpy as np
import torch

from labeling.hand_model import HandModel


def limit_tables(model) -> tuple[dict, np.ndarray]:
    """Right-hand joint-limit tables (float64 numpy) and the (45,) sign flip that
    mirrors this model's finger pose into a right hand's."""
    right = model if isinstance(model, HandModel) else model.limits
    limits = {
        "split": right.limit_split.double().numpy(),
        "low": right.limit_low.double().numpy(),
        "high": right.limit_high.double().numpy(),
    }
    mirror = np.ones(45) if model.is_right else np.tile([1.0, -1.0, -1.0], 15)
    return limits, mirror


# The batched fit's closed-form gradient. Tensors are component-major with frames
# last: points (3, 5, 4, T) [xyz, finger, joint along the finger, frame], finger pose
# (3, 5, 3, T) [xyz, finger, segment, frame], rotations (3, 3, 5, 3, T), so every
# elementwise op runs over long contiguous rows (batched 3x3 products in torch are
# ~10x slower on CPU).


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(3, 3, ...) @ (3, 3, ...) over the leading matrix dims."""
    return a[:, 0:1] * b[0:1] + a[:, 1:2] * b[1:2] + a[:, 2:3] * b[2:3]


def _matvec(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(3, 3, ...) @ (3, ...)."""
    return a[:, 0] * v[0] + a[:, 1] * v[1] + a[:, 2] * v[2]


def _matvec_t(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(3, 3, ...)ᵀ @ (3, ...)."""
    return a[0] * v[0] + a[1] * v[1] + a[2] * v[2]


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cross product over the leading dim of (3, ...) tensors."""
    x = a[1] * b[2] - a[2] * b[1]
    y = a[2] * b[0] - a[0] * b[2]
    return torch.stack([x, y, a[0] * b[1] - a[1] * b[0]])


def _rotations(axis_angle: torch.Tensor):
    """(3, ...) axis-angles -> Rodrigues rotations (3, 3, ...) and the coefficients
    a = (1 - cos θ) / θ², b = (θ - sin θ) / θ³ of the right Jacobian of SO(3),
    Jr = I - a K + b K² with K = [θ]x, so that R(θ + δ) ≈ R(θ) exp([Jr δ]x)."""
    x, y, z = axis_angle
    angle_sq = x * x + y * y + z * z
    angle = torch.sqrt(angle_sq + 1e-12)
    half_sin = torch.sin(0.5 * angle) / angle
    a = 2.0 * half_sin * half_sin  # as hand_model: precise in float32 near zero
    sin_over_angle = torch.sin(angle) / angle
    series = 1.0 / 6.0 - angle_sq / 120.0 + angle_sq * angle_sq / 5040.0
    exact = (1.0 - sin_over_angle) / angle_sq.clamp_min(1e-12)
    b = torch.where(angle < 0.3, series, exact)
    ax, ay, az = a * x, a * y, a * z
    sx, sy, sz = sin_over_angle * x, sin_over_angle * y, sin_over_angle * z
    axy, axz, ayz = ax * y, ax * z, ay * z
    entries = [
        *(1.0 - ay * y - az * z, axy - sz, axz + sy),
        *(axy + sz, 1.0 - ax * x - az * z, ayz - sx),
        *(axz - sy, ayz + sx, 1.0 - ax * x - ay * y),
    ]
    return torch.stack(entries).view((3, 3) + axis_angle.shape[1:]), a, b


class ChainHand:
    """The built-in right hand's forward kinematics (zero global orient) and the
    gradient of a loss on its joints w.r.t. the finger pose, in closed form: for
    segment s with chain rotation W_s at joint o_s, d joint_k / dδ = (W_s Jr δ) x
    (joint_k - o_s) for the joints k past it, so dL/dθ_s = Jrᵀ W_sᵀ τ_s with the
    torque τ_s = Σ_k (joint_k - o_s) x dL/d joint_k."""

    def __init__(self, model: HandModel):
        self.slots = (model.slots - 1).reshape(-1)  # (15,) MANO slot per finger joint
        self.base = model.base_mm.T.reshape(3, 5, 1)
        self.segments = model.segments_mm.permute(2, 0, 1).unsqueeze(-1)  # (3,5,3,1)
        split = model.limit_split[self.slots]  # (15, 3, 3)
        self.split = split.permute(1, 2, 0).reshape(3, 3, 5, 3, 1)
        self.low = model.limit_low[self.slots].T.reshape(3, 5, 3, 1)
        self.high = model.limit_high[self.slots].T.reshape(3, 5, 3, 1)

    def to_mano(self, finger: torch.Tensor) -> torch.Tensor:
        """(3, 5, 3, T) finger pose -> (T, 45) in MANO slot order."""
        frames = finger.shape[-1]
        pose = finger.new_empty(frames, 15, 3)
        pose[:, self.slots] = finger.permute(3, 1, 2, 0).reshape(frames, 15, 3)
        return pose.reshape(frames, 45)

    def forward(self, finger: torch.Tensor):
        """(3, 5, 3, T) finger pose -> joints (3, 5, 4, T) and the chain terms."""
        rotations, a, b = _rotations(finger)  # (3, 3, 5, 3, T)
        chain = [rotations[:, :, :, 0]]
        chain.append(_matmul(chain[0], rotations[:, :, :, 1]))
        chain.append(_matmul(chain[1], rotations[:, :, :, 2]))
        points = finger.new_empty(3, 5, 4, finger.shape[-1])
        points[:, :, 0] = self.base
        for segment in range(3):
            bone = _matvec(chain[segment], self.segments[:, :, segment])
            points[:, :, segment + 1] = points[:, :, segment] + bone
        return points, (chain, a, b)

    def gradient(self, finger, points, terms, point_gradient) -> torch.Tensor:
        """dL/d joints (3, 5, 4, T) -> dL/d finger pose (3, 5, 3, T)."""
        chain, a, b = terms
        gradient = torch.empty_like(finger)
        force = point_gradient[:, :, 3]  # Σ of dL/d joint over the joints past s
        moment = _cross(points[:, :, 3], force)  # Σ of joint x dL/d joint
        for segment in (2, 1, 0):
            torque = moment - _cross(points[:, :, segment], force)
            local = _matvec_t(chain[segment], torque)
            axis_angle = finger[:, :, segment]
            turned = _cross(axis_angle, local)
            gradient[:, :, segment] = (
                local
                + a[:, segment] * turned
                + b[:, segment] * _cross(axis_angle, turned)
            )
            if segment:
                force = force + point_gradient[:, :, segment]
                moment = moment + _cross(
                    points[:, :, segment], point_gradient[:, :, segment]
                )
        return gradient

    def limit_gradient(self, finger: torch.Tensor) -> torch.Tensor:
        """Gradient (3, 5, 3, T) of the joint-limit penalty (see hand_model)."""
        components = _matvec(self.split, finger)
        excess = (components - self.high).clamp_min(0) - (
            self.low - components
        ).clamp_min(0)
        return 2.0 * _matvec_t(self.split, excess)


def to_points(joints: torch.Tensor, bones: bool = False) -> torch.Tensor:
    """(T, 21, 3) joints (or (T, 20, 3) bones when `bones`) -> (3, 5, 4, T)."""
    fingers = joints if bones else joints[:, 1:]
    return fingers.permute(2, 1, 0).reshape(3, 5, 4, -1).contiguous()


def to_joints(points: torch.Tensor) -> torch.Tensor:
    """(3, 5, 4, T) -> (T, 21, 3) with the wrist at the origin."""
    frames = points.shape[-1]
    joints = points.new_zeros(frames, 21, 3)
    joints[:, 1:] = points.reshape(3, 20, frames).permute(2, 1, 0)
    return joints


def point_gradient(points, aligned, directions, observed, config) -> torch.Tensor:
    """Gradient (3, 5, 4, T) of the position and bone-direction terms w.r.t. the
    joints; aligned landmarks and target bone directions (3, 5, 4, T), observed (T,).
    """
    scale = 2.0 * config.position_weight / config.position_unit_mm**2
    gradient = scale * (points - aligned)
    bones = torch.cat([points[:, :, :1], points[:, :, 1:] - points[:, :, :-1]], 2)
    inverse_length = 1.0 / torch.sqrt((bones * bones).sum(0)).clamp_min(1e-9)
    unit = bones * inverse_length
    cosine = (unit * directions).sum(0)
    # d(1 - cos)/d bone, applied to the bone's child (+) and parent (-) joints
    bone_gradient = (directions - cosine * unit) * (
        -config.direction_weight * inverse_length
    )
    gradient += bone_gradient
    gradient[:, :, :3] -= bone_gradient[:, :, 1:]
    gradient *= observed
    return gradient
