"""Differentiable, batched torch hand models: MANO pose -> 21 joints in mm.

Two backends behind one interface (`joints`, `rest_joints_mm`, `joint_limit_penalty`):
- `HandModel`: the built-in kinematic model. It reuses the constants of
  `labeling.kinematics` (rest joints, finger axes, joint limits), so
  `HandModel().joints(pose)` equals `kinematics.forward_kinematics(pose)`.
- `ManoHandModel`: smplx's MANO layer, when the user supplies the licensed
  `MANO_RIGHT.pkl` / `MANO_LEFT.pkl` files; it also gives the mesh (`vertices`).
`load_hand_model(mano_dir)` picks one.

Pose (B, 48): global orient then 15 finger axis-angles (radians), MANO joint order.
Joints (B, 21, 3): millimetres, MediaPipe order, wrist at the origin.

Left hands (built-in model) are the mirror image of right hands through the x = 0
plane: joints x -> -x, and each axis-angle (x, y, z) -> (x, -y, -z), as the simulator
does. So a left-hand pose is the right-hand pose of the mirrored hand.

Joint limits. Each finger joint's axis-angle r (3,) is split into three rest-frame
components, r = flexion * f + abduction * a + twist * d, where f and a are the joint's
flexion and abduction axes from `kinematics` and d is the finger's rest direction
(rotation about the bone itself). The split is exact for rotations about one axis and
first order for combined flexion and abduction (90° flexion with 20° abduction reads
as 89° and 16°, plus ~16° twist). Base joints (MCP, thumb CMC) take their flexion and
abduction limits from `JOINT_LIMITS_RAD`; middle and distal joints (PIP, DIP, thumb
MCP and IP) take their flexion limits from it and are hinges: abduction within
±HINGE_TOLERANCE_RAD. Twist stays within ±TWIST_TOLERANCE_RAD. The penalty is the
squared excess beyond the limits (rad²), zero inside them.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import torch
from torch import nn

from labeling import kinematics as kin

HINGE_TOLERANCE_RAD = np.deg2rad(10.0)
# Combined flexion and abduction at a base joint reads as up to ~25° of twist.
TWIST_TOLERANCE_RAD = np.deg2rad(30.0)
MIRROR_AXIS_ANGLE = (1.0, -1.0, -1.0)  # (x, y, z) -> (x, -y, -z) for the mirror hand

# MANO slots (0..14) of each finger's three joints, fingers in MediaPipe order.
_FINGER_SLOTS = np.array([kin._MANO_SLOTS[finger] for finger in kin.FINGERS])  # (5, 3)
MANO_FINGERTIP_VERTICES = (744, 320, 443, 554, 671)  # thumb, index, middle, ring, pinky


def _mediapipe_from_mano_order() -> list[int]:
    """Indexes into [16 MANO joints, 5 tips (thumb..pinky)] giving MediaPipe order."""
    order = [0]
    for finger_index, slots in enumerate(_FINGER_SLOTS):
        order += [int(slot) + 1 for slot in slots] + [16 + finger_index]
    return order


MEDIAPIPE_FROM_MANO = _mediapipe_from_mano_order()


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues: (..., 3) axis-angle (rad) -> (..., 3, 3); smooth through zero."""
    angle_sq = (axis_angle * axis_angle).sum(-1, keepdim=True)  # (..., 1)
    angle = torch.sqrt(angle_sq + 1e-12)
    sin_over_angle = torch.sin(angle) / angle
    # (1 - cos) / angle² written with sin² so float32 keeps precision near zero
    half_sin = torch.sin(0.5 * angle) / angle
    one_minus_cos_over_sq = 2.0 * half_sin * half_sin
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1)
    skew = skew.unflatten(-1, (3, 3))  # (..., 3, 3)
    outer = axis_angle.unsqueeze(-1) * axis_angle.unsqueeze(-2)  # (..., 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    # K² = r rᵀ - |r|² I for the unnormalised skew matrix K of r
    skew_sq = outer - angle_sq.unsqueeze(-1) * eye
    return (
        eye
        + sin_over_angle.unsqueeze(-1) * skew
        + one_minus_cos_over_sq.unsqueeze(-1) * skew_sq
    )


def matrix_to_axis_angle(rotation: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotations -> (..., 3) axis-angle, accurate below ~170°."""
    trace = rotation.diagonal(dim1=-2, dim2=-1).sum(-1)
    angle = torch.arccos(((trace - 1.0) / 2.0).clamp(-1.0, 1.0))
    skew_part = torch.stack(
        [
            rotation[..., 2, 1] - rotation[..., 1, 2],
            rotation[..., 0, 2] - rotation[..., 2, 0],
            rotation[..., 1, 0] - rotation[..., 0, 1],
        ],
        -1,
    )
    sin = torch.sin(angle)
    scale = torch.where(sin > 1e-6, angle / sin.clamp_min(1e-6), torch.ones_like(sin))
    return 0.5 * skew_part * scale.unsqueeze(-1)


def mirror_pose(pose: torch.Tensor) -> torch.Tensor:
    """(B, 48) pose of a hand -> pose of its mirror image through x = 0."""
    mirror = pose.new_tensor(MIRROR_AXIS_ANGLE).repeat(16)  # (48,)
    return pose * mirror


def mirror_joints(joints: torch.Tensor) -> torch.Tensor:
    """(..., 3) points -> their mirror image through x = 0 (x -> -x)."""
    return joints * joints.new_tensor([-1.0, 1.0, 1.0])


def scale_bones(joints_mm: torch.Tensor, bone_scale: torch.Tensor) -> torch.Tensor:
    """Scale each of the 20 bones (wrist->base, then 3 per finger; order of
    `kinematics.bone_lengths_mm`) of (B, 21, 3) joints by (B, 20), keeping angles."""
    batch = joints_mm.shape[0]
    fingers = joints_mm[:, 1:].reshape(batch, 5, 4, 3)
    parents = torch.cat([joints_mm[:, :1, None].expand(-1, 5, 1, 3), fingers], 2)
    bones = torch.diff(parents, dim=2)  # (B, 5, 4, 3)
    bones = bones * bone_scale.reshape(batch, 5, 4, 1)
    fingers = joints_mm[:, :1, None] + bones.cumsum(2)
    return torch.cat([joints_mm[:, :1], fingers.reshape(batch, 20, 3)], 1)


def _limit_table() -> tuple[np.ndarray, np.ndarray]:
    """Low and high limits (15, 3) rad of [flexion, abduction, twist] per MANO slot."""
    low = np.tile([0.0, -HINGE_TOLERANCE_RAD, -TWIST_TOLERANCE_RAD], (15, 1))
    high = np.tile([0.0, HINGE_TOLERANCE_RAD, TWIST_TOLERANCE_RAD], (15, 1))
    for finger_index, slots in enumerate(_FINGER_SLOTS):
        limits = kin.JOINT_LIMITS_RAD[4 * finger_index : 4 * finger_index + 4]
        # angles per finger: abduction, then flexion of the three joints
        low[slots, 0], high[slots, 0] = limits[1:, 0], limits[1:, 1]
        low[slots[0], 1], high[slots[0], 1] = limits[0]
    return low, high


def _split_basis_inverse() -> np.ndarray:
    """(15, 3, 3) matrices taking an axis-angle to [flexion, abduction, twist]."""
    directions = kin.finger_directions()
    inverse = np.zeros((15, 3, 3))
    for finger, slots in zip(kin.FINGERS, _FINGER_SLOTS, strict=True):
        for slot in slots:
            basis = np.stack(
                [kin.FLEXION_AXES[slot], kin.ABDUCTION_AXES[slot], directions[finger]],
                axis=1,
            )
            inverse[slot] = np.linalg.inv(basis)
    return inverse


def joint_limit_penalty(pose: torch.Tensor, limits: dict) -> torch.Tensor:
    """(B, 48) right-hand pose -> (B,) squared excess (rad²) beyond the joint limits."""
    finger_pose = pose[:, 3:].reshape(-1, 15, 3)  # (B, 15, 3)
    components = torch.einsum("jik,bjk->bji", limits["split"], finger_pose)
    below = torch.relu(limits["low"] - components)
    above = torch.relu(components - limits["high"])
    return (below * below + above * above).sum((1, 2))


class HandModel(nn.Module):
    """The built-in MANO-convention kinematic hand (no mesh). Buffers follow
    `.to(device, dtype)`; float32 by default."""

    def __init__(self, is_right: bool = True, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.is_right = is_right
        self.bone_scale = None  # (20,) once fitted to a person (`with_bone_scale`)
        rest = kin.rest_joints_mm()  # (21, 3)
        fingers = rest[1:].reshape(5, 4, 3)
        self.register_buffer("base_mm", torch.tensor(fingers[:, 0], dtype=dtype))
        segments = np.diff(fingers, axis=1)  # (5, 3, 3) finger, segment
        self.register_buffer("segments_mm", torch.tensor(segments, dtype=dtype))
        self.register_buffer("slots", torch.tensor(_FINGER_SLOTS + 1))  # (5, 3)
        low, high = _limit_table()
        self.register_buffer("limit_low", torch.tensor(low, dtype=dtype))
        self.register_buffer("limit_high", torch.tensor(high, dtype=dtype))
        self.register_buffer(
            "limit_split", torch.tensor(_split_basis_inverse(), dtype=dtype)
        )

    def joints(
        self, pose: torch.Tensor, bone_scale: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, 48) pose, optional (B, 20) bone scales -> (B, 21, 3) joints, mm."""
        if self.is_right:
            return self._right_joints(pose, bone_scale)
        return mirror_joints(self._right_joints(mirror_pose(pose), bone_scale))

    def _right_joints(
        self, pose: torch.Tensor, bone_scale: torch.Tensor | None
    ) -> torch.Tensor:
        batch = pose.shape[0]
        rotations = axis_angle_to_matrix(pose.reshape(batch, 16, 3))  # (B, 16, 3, 3)
        wrist = rotations[:, :1]  # (B, 1, 3, 3)
        finger_rotations = rotations[:, self.slots]  # (B, 5, 3, 3, 3)
        bones = [wrist @ self.base_mm.unsqueeze(-1)]  # [(B, 5, 3, 1)]
        chain = wrist
        for segment in range(3):
            chain = chain @ finger_rotations[:, :, segment]  # (B, 5, 3, 3)
            bones.append(chain @ self.segments_mm[:, segment].unsqueeze(-1))
        bones = torch.stack(bones, 2).squeeze(-1)  # (B, 5, 4, 3)
        if bone_scale is not None:
            bones = bones * bone_scale.reshape(batch, 5, 4, 1)
        fingers = bones.cumsum(2).reshape(batch, 20, 3)
        return torch.cat([fingers.new_zeros(batch, 1, 3), fingers], 1)

    @property
    def rest_joints_mm(self) -> torch.Tensor:
        """(21, 3) rest-pose joints, mm."""
        return self.joints(self.base_mm.new_zeros(1, 48))[0]

    def with_bone_scale(self, bone_scale) -> HandModel:
        """A copy of this hand with its 20 bones (MediaPipe finger order: wrist to
        base, then three segments per finger) scaled by `bone_scale` (20,): one
        person's hand. Every fit path reads the scaled bones."""
        scale = torch.as_tensor(bone_scale, dtype=self.base_mm.dtype).reshape(5, 4)
        hand = copy.deepcopy(self)
        hand.base_mm = self.base_mm * scale[:, :1]
        hand.segments_mm = self.segments_mm * scale[:, 1:, None]
        hand.bone_scale = scale.reshape(20).clone()
        return hand

    def joint_limit_penalty(self, pose: torch.Tensor) -> torch.Tensor:
        """(B, 48) pose -> (B,) soft joint-limit penalty, rad² (module docstring)."""
        if not self.is_right:
            pose = mirror_pose(pose)
        limits = {
            "split": self.limit_split,
            "low": self.limit_low,
            "high": self.limit_high,
        }
        return joint_limit_penalty(pose, limits)


class ManoHandModel(nn.Module):
    """smplx's MANO layer behind the `HandModel` interface (flat hand mean, no PCA,
    mean shape). `mano_dir` holds `mano/MANO_RIGHT.pkl` (or `_LEFT`). The joint-limit
    penalty uses the built-in model's axes, an approximation of MANO's own frames."""

    def __init__(self, mano_dir: str, is_right: bool = True):
        super().__init__()
        import smplx  # optional dependency, only for users with MANO files

        self.is_right = is_right
        self.layer = smplx.create(
            mano_dir,
            model_type="mano",
            is_rhand=is_right,
            use_pca=False,
            flat_hand_mean=True,
        )
        self.register_buffer("order", torch.tensor(MEDIAPIPE_FROM_MANO))
        self.register_buffer("tips", torch.tensor(MANO_FINGERTIP_VERTICES))
        self.limits = HandModel(is_right=is_right)

    def forward_mano(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 48) pose -> joints (B, 21, 3) mm and vertices (B, 778, 3) mm, both
        relative to the wrist."""
        batch = pose.shape[0]
        output = self.layer(
            global_orient=pose[:, :3],
            hand_pose=pose[:, 3:],
            betas=pose.new_zeros(batch, self.layer.num_betas),
            transl=pose.new_zeros(batch, 3),
        )
        vertices = output.vertices  # (B, 778, 3) metres
        joints = torch.cat([output.joints[:, :16], vertices[:, self.tips]], 1)
        wrist = joints[:, :1]
        joints_mm = (joints[:, self.order] - wrist) * 1000.0
        return joints_mm, (vertices - wrist) * 1000.0

    def joints(
        self, pose: torch.Tensor, bone_scale: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, 48) pose, optional (B, 20) bone scales -> (B, 21, 3) joints, mm."""
        joints_mm = self.forward_mano(pose)[0]
        return joints_mm if bone_scale is None else scale_bones(joints_mm, bone_scale)

    def vertices(self, pose: torch.Tensor) -> torch.Tensor:
        """(B, 48) pose -> (B, 778, 3) mesh vertices, mm, wrist at the origin."""
        return self.forward_mano(pose)[1]

    @property
    def rest_joints_mm(self) -> torch.Tensor:
        """(21, 3) rest-pose (flat hand) joints, mm."""
        dtype = self.layer.v_template.dtype
        return self.joints(torch.zeros(1, 48, dtype=dtype))[0]

    def joint_limit_penalty(self, pose: torch.Tensor) -> torch.Tensor:
        """(B, 48) pose -> (B,) soft joint-limit penalty, rad²."""
        return self.limits.joint_limit_penalty(pose)


def load_hand_model(
    mano_dir: str | None, is_right: bool = True
) -> HandModel | ManoHandModel:
    """MANO when `mano_dir` has the model file for this hand, else the built-in model
    (None means built-in). A directory without the file fails loudly."""
    if mano_dir is None:
        return HandModel(is_right=is_right)
    name = "MANO_RIGHT.pkl" if is_right else "MANO_LEFT.pkl"
    path = os.path.join(mano_dir, "mano", name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no MANO model at {path}")
    return ManoHandModel(mano_dir, is_right=is_right)
