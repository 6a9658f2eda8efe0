"""Differentiable torch hand kinematics for the model zoo.

The torch twin of `labeling.kinematics.angles_to_mano_pose` followed by the built-in
`HandModel`: 20 anatomical joint angles (rad, ANGLE_NAMES order) -> MANO pose
(B, 48), global orient zero -> joints (B, 21, 3) mm, MediaPipe order, wrist at the
origin, in the hand frame. It reuses the numpy module's axes and angle tables, so
it equals the numpy kinematics (to float round-off).

Each finger joint turns by R = R_abduction @ R_flexion about fixed axes; the
composition is done with quaternions, whose axis-angle is smooth everywhere
(matrix -> axis-angle through arccos has an infinite gradient at zero rotation,
which is where every model starts).

The kinematics runs in the module's dtype (float32 unless `.double()`), outside
autocast: millimetre-scale chains lose too much in float16.
"""

from __future__ import annotations

import torch
from torch import nn

from labeling import kinematics as kin
from labeling.hand_model import HandModel

NUM_ANGLES = len(kin.ANGLE_NAMES)  # 20
POSE_SIZE = 48  # global orient (3) + 15 finger joints × 3 axis-angle
FINGER_POSE_SIZE = 45
NUM_JOINTS = 21


def frozen_hand_model() -> HandModel:
    """The built-in right hand with its constants as non-persistent buffers: they
    follow `.to(device)` but stay out of checkpoints (they are code, not weights)."""
    hand = HandModel()
    for name, buffer in list(hand.named_buffers(recurse=False)):
        hand.register_buffer(name, buffer, persistent=False)
    return hand


def pose_from_finger_pose(finger_pose: torch.Tensor) -> torch.Tensor:
    """(B, 45) finger axis-angles -> (B, 48) pose with a zero global orient."""
    return torch.cat([finger_pose.new_zeros(finger_pose.shape[0], 3), finger_pose], 1)


def _quaternion_about(axes: torch.Tensor, angle: torch.Tensor):
    """Rotation by `angle` (..., 15) rad about unit `axes` (15, 3): (w (..., 15),
    v (..., 15, 3))."""
    half = 0.5 * angle
    return torch.cos(half), torch.sin(half).unsqueeze(-1) * axes


def _quaternion_product(first, second):
    """Hamilton product first ⊗ second: the rotation `second`, then `first`."""
    w1, v1 = first
    w2, v2 = second
    w = w1 * w2 - (v1 * v2).sum(-1)
    v = w1.unsqueeze(-1) * v2 + w2.unsqueeze(-1) * v1 + torch.cross(v1, v2, dim=-1)
    return w, v


def _quaternion_to_axis_angle(w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Unit quaternion (w (...), v (..., 3)) -> axis-angle (..., 3), angle in
    [0, π] for w >= 0; smooth through zero rotation."""
    sign = torch.where(w < 0, -1.0, 1.0).to(w.dtype)  # q and -q: the same rotation
    w, v = w * sign, v * sign.unsqueeze(-1)
    # the tiny floor keeps the gradient finite at v = 0, where angle / |v| -> 2 / w
    sine = torch.sqrt((v * v).sum(-1) + 1e-20)  # sin(angle / 2)
    return v * (2.0 * torch.atan2(sine, w) / sine).unsqueeze(-1)


class HandKinematics(nn.Module):
    """Joint angles (B, 20) rad -> MANO pose (B, 48) -> joints (B, 21, 3) mm.

    No parameters; its buffers are non-persistent (see `frozen_hand_model`)."""

    def __init__(self):
        super().__init__()
        self.hand = frozen_hand_model()
        flexion_axes = torch.tensor(kin.FLEXION_AXES, dtype=torch.float32)  # (15, 3)
        abduction_axes = torch.tensor(kin.ABDUCTION_AXES, dtype=torch.float32)
        has_abduction = torch.tensor(kin._ABDUCTION_SOURCE >= 0)  # (15,)
        # joints without abduction (PIP, DIP, ...) read angle 0 through a zero axis
        abduction_axes = abduction_axes * has_abduction.unsqueeze(-1)
        flexion_source = torch.tensor(kin._FLEXION_SOURCE)
        abduction_source = torch.tensor(kin._ABDUCTION_SOURCE).clamp_min(0)
        for name, value in (
            ("flexion_axes", flexion_axes),
            ("abduction_axes", abduction_axes),
            ("flexion_source", flexion_source),
            ("abduction_source", abduction_source),
        ):
            self.register_buffer(name, value, persistent=False)

    def pose(self, joint_angles: torch.Tensor) -> torch.Tensor:
        """(B, 20) rad -> (B, 48) MANO pose, zero global orient."""
        with torch.autocast(joint_angles.device.type, enabled=False):
            angles = joint_angles.to(self.flexion_axes.dtype)  # the module's dtype
            flexion = _quaternion_about(
                self.flexion_axes, angles[:, self.flexion_source]
            )
            abduction = _quaternion_about(
                self.abduction_axes, angles[:, self.abduction_source]
            )
            w, v = _quaternion_product(abduction, flexion)  # (B, 15), (B, 15, 3)
            finger_pose = _quaternion_to_axis_angle(w, v).flatten(1)  # (B, 45)
            return pose_from_finger_pose(finger_pose)

    def joints_from_pose(self, pose: torch.Tensor) -> torch.Tensor:
        """(B, 48) pose -> (B, 21, 3) mm in the module's dtype, outside autocast."""
        with torch.autocast(pose.device.type, enabled=False):
            return self.hand.joints(pose.to(self.flexion_axes.dtype))

    def forward(self, joint_angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 20) rad -> (pose (B, 48), joints (B, 21, 3) mm)."""
        pose = self.pose(joint_angles)
        return pose, self.joints_from_pose(pose)


def rest_joints_mm() -> torch.Tensor:
    """(21, 3) float32 joints of the flat rest hand, mm."""
    return torch.tensor(kin.rest_joints_mm(), dtype=torch.float32)


def start_at_rest_hand(head: nn.Linear) -> None:
    """Start a (B, 63) joints head's output at the flat rest hand: its bias (mm).
    From a zero bias, Adam (lr 1e-3) spends its first thousand steps just growing
    the outputs to hand size (~100 mm), which a short training budget cannot
    afford."""
    with torch.no_grad():
        head.bias.copy_(rest_joints_mm().flatten())
