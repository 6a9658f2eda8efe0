"""A MANO-convention kinematic hand model in numpy: joint angles -> pose -> joints.

Rest frame (right hand, flat, MANO-like "flat hand" rest pose), millimetres:
- the wrist is at the origin;
- fingers point along +y;
- the palm faces +z (palm normal +z), so flexing a finger moves its tip toward +z;
- the thumb lies on the +x side (radial), the pinky on the -x side (ulnar).
This is a right-handed frame: a right hand held palm toward a viewer standing on +z,
fingers up, has its thumb on the viewer's right (+x).

MANO pose (48,): global orient (3 axis-angle) then 15 finger joints (3 axis-angle
each) in MANO order index1-3, middle1-3, pinky1-3, ring1-3, thumb1-3. Each joint's
axis-angle is its rotation relative to its parent, expressed in rest-frame axes, as in
MANO. Joints come out in MediaPipe's 21-joint order.

Joint angles (20,) radians, emg2pose-like, in ANGLE_NAMES order. Flexion is positive
toward the palm; mcp_abduction is positive away from the middle finger (for the middle
finger itself: toward the thumb); thumb cmc_abduction is positive away from the index
finger within the palm plane (radial abduction).

A later issue adds a differentiable torch model that reuses the constants here.
"""

from __future__ import annotations

import numpy as np

FINGERS = ("thumb", "index", "middle", "ring", "pinky")

MEDIAPIPE_JOINT_NAMES = (
    "wrist",
    "thumb_cmc",
    "thumb_mcp",
    "thumb_ip",
    "thumb_tip",
    "index_mcp",
    "index_pip",
    "index_dip",
    "index_tip",
    "middle_mcp",
    "middle_pip",
    "middle_dip",
    "middle_tip",
    "ring_mcp",
    "ring_pip",
    "ring_dip",
    "ring_tip",
    "pinky_mcp",
    "pinky_pip",
    "pinky_dip",
    "pinky_tip",
)

MANO_JOINT_NAMES = (
    "wrist",
    "index1",
    "index2",
    "index3",
    "middle1",
    "middle2",
    "middle3",
    "pinky1",
    "pinky2",
    "pinky3",
    "ring1",
    "ring2",
    "ring3",
    "thumb1",
    "thumb2",
    "thumb3",
)

_THUMB_DOFS = ("cmc_abduction", "cmc_flexion", "mcp_flexion", "ip_flexion")
_FINGER_DOFS = ("mcp_abduction", "mcp_flexion", "pip_flexion", "dip_flexion")
ANGLE_NAMES = tuple(
    f"{finger}_{dof}"
    for finger in FINGERS
    for dof in (_THUMB_DOFS if finger == "thumb" else _FINGER_DOFS)
)

# Anatomical active ranges of motion (radians), rounded from clinical goniometry norms
# (e.g. AAOS): MCP flexion ~90°, hyperextension ~30°; PIP 0..110°; DIP -5..80°;
# MCP abduction about ±20°; thumb CMC ~±30..50°, thumb MCP ~55°, thumb IP ~80°.
_DEG = np.pi / 180.0
_THUMB_LIMITS_DEG = [(-20, 50), (-30, 50), (-10, 60), (-20, 80)]
_FINGER_LIMITS_DEG = [(-20, 20), (-30, 90), (0, 110), (-5, 80)]
_PINKY_LIMITS_DEG = [(-20, 30), (-30, 90), (0, 110), (-5, 80)]
JOINT_LIMITS_RAD = (
    np.array(
        _THUMB_LIMITS_DEG + _FINGER_LIMITS_DEG * 3 + _PINKY_LIMITS_DEG, dtype=np.float64
    )
    * _DEG
)  # (20, 2) [low, high]

# Rest-pose geometry of an average adult hand (hand length ~185 mm, between the male
# and female means of anthropometric surveys). Phalanx lengths follow the segment-to-
# hand-length ratios of Buchholz, Armstrong & Goldstein (1992, J. Biomech.) scaled to
# 185 mm and rounded; metacarpal offsets place the MCP row in a gentle arc ~65 mm wide
# across its joint centres, the middle MCP ~85 mm from the wrist crease.
FINGER_BASE_MM = {
    "thumb": (24.0, 26.0, 6.0),  # CMC: radial, slightly palmar
    "index": (24.0, 82.0, 0.0),
    "middle": (4.0, 85.0, 0.0),
    "ring": (-15.0, 80.0, 0.0),
    "pinky": (-31.0, 70.0, 0.0),
}
# Per finger: base->second joint, second->third, third->tip (thumb: CMC->MCP, MCP->IP,
# IP->tip; fingers: MCP->PIP, PIP->DIP, DIP->tip).
PHALANX_LENGTHS_MM = {
    "thumb": (46.0, 36.0, 29.0),
    "index": (45.0, 26.5, 18.0),
    "middle": (49.0, 31.5, 20.0),
    "ring": (45.0, 30.5, 20.0),
    "pinky": (37.5, 21.5, 17.0),
}

# Rest directions of each finger's chain: slightly splayed fingers, thumb out at ~40°
# from the index and a little in front of the palm.
_SPLAY_DEG = {"index": 8.0, "middle": 1.0, "ring": -6.0, "pinky": -14.0}
_THUMB_DIRECTION = np.array([0.62, 0.72, 0.0])
# Thumb flexion carries the tip across the palm (ulnar and palmar); radial abduction
# moves it away from the index within the palm plane.
_THUMB_FLEXION_MOTION = np.array([-1.0, -0.3, 0.3])
_THUMB_ABDUCTION_MOTION = np.array([0.72, -0.62, 0.0])
_PALM_NORMAL = np.array([0.0, 0.0, 1.0])

# MANO slot (0..14, i.e. MANO joint - 1) of each finger's three joints, MediaPipe order.
_MANO_SLOTS = {
    "thumb": (12, 13, 14),
    "index": (0, 1, 2),
    "middle": (3, 4, 5),
    "ring": (9, 10, 11),
    "pinky": (6, 7, 8),
}


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def _axis_moving_toward(bone: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """The rotation axis that swings unit `bone` toward `motion` for positive angles."""
    motion_perp = motion - np.dot(motion, bone) * bone
    return _unit(np.cross(bone, motion_perp))


def finger_directions() -> dict[str, np.ndarray]:
    """Unit rest direction of each finger's chain, rest frame."""
    directions = {"thumb": _unit(_THUMB_DIRECTION)}
    for finger, splay_deg in _SPLAY_DEG.items():
        splay = splay_deg * _DEG
        directions[finger] = np.array([np.sin(splay), np.cos(splay), 0.0])
    return directions


def _joint_axes() -> tuple[np.ndarray, np.ndarray]:
    """Flexion and abduction axes (15, 3) of the MANO finger joints, rest frame."""
    flexion_axes = np.zeros((15, 3))
    abduction_axes = np.zeros((15, 3))
    for finger, direction in finger_directions().items():
        if finger == "thumb":
            flexion = _axis_moving_toward(direction, _THUMB_FLEXION_MOTION)
            abduction = _axis_moving_toward(direction, _THUMB_ABDUCTION_MOTION)
        else:
            flexion = _axis_moving_toward(direction, _PALM_NORMAL)
            # Away from the middle finger: radial for index/middle, ulnar otherwise.
            radial = finger in ("index", "middle")
            abduction = -_PALM_NORMAL if radial else _PALM_NORMAL
        flexion_axes[list(_MANO_SLOTS[finger])] = flexion
        abduction_axes[list(_MANO_SLOTS[finger])] = abduction
    return flexion_axes, abduction_axes


def _angle_sources() -> tuple[np.ndarray, np.ndarray]:
    """For each MANO slot: index into the 20 angles of its flexion, of its abduction
    (-1 where the joint has none)."""
    flexion_source = np.zeros(15, dtype=np.int64)
    abduction_source = np.full(15, -1, dtype=np.int64)
    for finger_index, finger in enumerate(FINGERS):
        first_angle = 4 * finger_index
        base, middle, distal = _MANO_SLOTS[finger]
        abduction_source[base] = first_angle
        flexion_source[[base, middle, distal]] = first_angle + np.arange(1, 4)
    return flexion_source, abduction_source


def rest_joints_mm() -> np.ndarray:
    """Rest-pose joints (21, 3) in mm, MediaPipe order, wrist at the origin."""
    joints = [np.zeros(3)]
    directions = finger_directions()
    for finger in FINGERS:
        position = np.array(FINGER_BASE_MM[finger])
        joints.append(position)
        for length_mm in PHALANX_LENGTHS_MM[finger]:
            position = position + length_mm * directions[finger]
            joints.append(position)
    return np.stack(joints)


FLEXION_AXES, ABDUCTION_AXES = _joint_axes()
_FLEXION_SOURCE, _ABDUCTION_SOURCE = _angle_sources()
_REST_JOINTS_MM = rest_joints_mm()


def axis_angle_to_matrix(axis_angle: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: (..., 3) axis-angle (radians) -> (..., 3, 3) rotations."""
    angle = np.linalg.norm(axis_angle, axis=-1, keepdims=True)
    axis = axis_angle / np.maximum(angle, 1e-12)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    skew = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1)
    skew = skew.reshape(axis.shape[:-1] + (3, 3))
    sin = np.sin(angle)[..., None]
    one_minus_cos = (1.0 - np.cos(angle))[..., None]
    return np.eye(3) + sin * skew + one_minus_cos * (skew @ skew)


def matrix_to_axis_angle(rotation: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) axis-angle; accurate for angles below ~170°,
    which anatomical joint rotations always are."""
    trace = np.trace(rotation, axis1=-2, axis2=-1)
    angle = np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0))
    skew_part = np.stack(
        [
            rotation[..., 2, 1] - rotation[..., 1, 2],
            rotation[..., 0, 2] - rotation[..., 2, 0],
            rotation[..., 1, 0] - rotation[..., 0, 1],
        ],
        axis=-1,
    )
    sin = np.sin(angle)
    # angle / sin(angle) -> 1 as the angle -> 0
    scale = np.where(sin > 1e-8, angle / np.maximum(sin, 1e-8), 1.0)
    return 0.5 * skew_part * scale[..., None]


def angles_to_mano_pose(
    joint_angles: np.ndarray, global_orient: np.ndarray | None = None
) -> np.ndarray:
    """20 anatomical angles (..., 20) rad -> MANO pose (..., 48) float32.

    Each finger joint's rotation is abduction (about its abduction axis) applied after
    flexion (about its flexion axis): R = R_abduction @ R_flexion. `global_orient`
    (..., 3) axis-angle, zeros when None.
    """
    joint_angles = np.asarray(joint_angles, dtype=np.float64)
    batch_shape = joint_angles.shape[:-1]
    flexion = joint_angles[..., _FLEXION_SOURCE, None] * FLEXION_AXES  # (..., 15, 3)
    abduction_angle = np.where(
        _ABDUCTION_SOURCE >= 0, joint_angles[..., np.maximum(_ABDUCTION_SOURCE, 0)], 0.0
    )
    abduction = abduction_angle[..., None] * ABDUCTION_AXES  # (..., 15, 3)
    rotation = axis_angle_to_matrix(abduction) @ axis_angle_to_matrix(flexion)
    finger_pose = matrix_to_axis_angle(rotation).reshape(batch_shape + (45,))
    if global_orient is None:
        global_orient = np.zeros(batch_shape + (3,))
    global_orient = np.broadcast_to(global_orient, batch_shape + (3,))
    return np.concatenate([global_orient, finger_pose], axis=-1).astype(np.float32)


def forward_kinematics(
    pose: np.ndarray, bone_scale: float | np.ndarray = 1.0
) -> np.ndarray:
    """MANO pose (..., 48) -> joints (..., 21, 3) in mm, MediaPipe order, wrist at the
    origin, in the rest frame described in the module docstring (rotated by the global
    orient). `bone_scale` (scalar or (...,)) scales the whole hand uniformly."""
    pose = np.asarray(pose, dtype=np.float64)
    batch_shape = pose.shape[:-1]
    rotations = axis_angle_to_matrix(pose.reshape(batch_shape + (16, 3)))
    wrist_rotation = rotations[..., 0, None, :, :]  # (..., 1, 3, 3)
    slots = np.array([_MANO_SLOTS[finger] for finger in FINGERS]) + 1  # (5, 3)
    finger_rotations = rotations[..., slots, :, :]  # (..., 5, 3, 3, 3)
    rest = _REST_JOINTS_MM[1:].reshape(5, 4, 3)
    segments = np.diff(rest, axis=1)  # (5, 3, 3) base->j2, j2->j3, j3->tip
    position = _rotate(wrist_rotation, rest[:, 0])  # (..., 5, 3)
    chain = [position]
    global_rotation = np.broadcast_to(wrist_rotation, batch_shape + (5, 3, 3))
    for segment in range(3):
        global_rotation = global_rotation @ finger_rotations[..., segment, :, :]
        position = position + _rotate(global_rotation, segments[:, segment])
        chain.append(position)
    fingers = np.stack(chain, axis=-2).reshape(batch_shape + (20, 3))
    joints = np.concatenate([np.zeros(batch_shape + (1, 3)), fingers], axis=-2)
    return joints * np.asarray(bone_scale, dtype=np.float64)[..., None, None]


def _rotate(rotation: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Apply (..., 3, 3) rotations to (..., 3) vectors."""
    return np.einsum("...ij,...j->...i", rotation, vector)


def bone_lengths_mm(joints: np.ndarray) -> np.ndarray:
    """Lengths (..., 20) of the 20 bones (wrist->base and three per finger), in the
    joints' units, MediaPipe finger order."""
    fingers = joints[..., 1:, :].reshape(joints.shape[:-2] + (5, 4, 3))
    wrist = joints[..., :1, None, :]
    chain = np.concatenate(
        [np.broadcast_to(wrist, fingers[..., :1, :].shape), fingers], -2
    )
    return np.linalg.norm(np.diff(chain, axis=-2), axis=-1).reshape(
        joints.shape[:-2] + (20,)
    )


def hand_frame_joints(joints_mm: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Joints (..., 21, 3) mm as stored (rotated by the global orient, as the IK
    writes them) -> (..., 21, 3) float64 in the hand frame, wrist at the origin.

    Removes the global orient pose[..., :3]: joints_hand = R(orient)^T @ joints.
    Also right for left hands: their joints and pose are both mirrored.
    """
    joints = np.asarray(joints_mm, dtype=np.float64)
    rotation = axis_angle_to_matrix(np.asarray(pose, dtype=np.float64)[..., :3])
    wrist_relative = joints - joints[..., :1, :]
    # Rows v @ R are (R^T v)^T.
    return wrist_relative @ rotation


def _rotate_about(vectors: np.ndarray, axis: np.ndarray, angle: np.ndarray):
    """Rodrigues on vectors (..., 3) about unit `axis` (3,) or (..., 3) by `angle`
    (...) radians."""
    cos, sin = np.cos(angle)[..., None], np.sin(angle)[..., None]
    along = np.sum(axis * vectors, axis=-1, keepdims=True)
    return vectors * cos + np.cross(axis, vectors) * sin + axis * along * (1 - cos)


def _base_angles(
    bone: np.ndarray, direction, flexion_axis, abduction_axis
) -> tuple[np.ndarray, np.ndarray]:
    """Abduction and flexion (...) rad of a base joint (MCP, thumb CMC) from its unit
    bone (..., 3), inverting bone = R_abduction(a) @ R_flexion(f) @ direction.

    a brings the bone, turned back about the abduction axis, into the plane that
    flexion sweeps (perpendicular to the flexion axis); of the two solutions the one
    nearer zero is taken. Exact for the 20-DOF model; a projection otherwise.
    """
    coupling = np.dot(flexion_axis, abduction_axis)
    offset = coupling * np.sum(bone * abduction_axis, axis=-1)
    cos_part = np.sum(bone * flexion_axis, axis=-1) - offset
    sin_part = np.sum(bone * np.cross(abduction_axis, flexion_axis), axis=-1)
    radius = np.maximum(np.hypot(cos_part, sin_part), 1e-12)
    phase = np.arctan2(sin_part, cos_part)
    spread = np.arccos(np.clip(-offset / radius, -1.0, 1.0))
    candidates = np.angle(np.exp(1j * np.stack([phase + spread, phase - spread])))
    abduction = np.where(
        np.abs(candidates[0]) <= np.abs(candidates[1]), candidates[0], candidates[1]
    )
    unabducted = _rotate_about(bone, abduction_axis, -abduction)
    toward = np.cross(flexion_axis, direction)  # where positive flexion swings it
    flexion = np.arctan2(
        np.sum(unabducted * toward, axis=-1), np.sum(unabducted * direction, axis=-1)
    )
    return abduction, flexion


def _bend(parent_bone: np.ndarray, child_bone: np.ndarray, axis: np.ndarray):
    """Signed angle (...) rad from parent to child bone (..., 3) about `axis`
    (..., 3), both projected onto the plane perpendicular to the axis."""
    parent = parent_bone - np.sum(parent_bone * axis, -1, keepdims=True) * axis
    child = child_bone - np.sum(child_bone * axis, -1, keepdims=True) * axis
    sin = np.sum(np.cross(parent, child) * axis, axis=-1)
    return np.arctan2(sin, np.sum(parent * child, axis=-1))


def _finger_angles(bones: np.ndarray, finger: str) -> np.ndarray:
    """(..., 3, 3) unit bones of one finger -> its 4 angles (..., 4) rad in
    ANGLE_NAMES order (abduction, then the three flexions)."""
    base_slot = _MANO_SLOTS[finger][0]
    flexion_axis = FLEXION_AXES[base_slot]
    abduction_axis = ABDUCTION_AXES[base_slot]
    abduction, base_flexion = _base_angles(
        bones[..., 0, :], finger_directions()[finger], flexion_axis, abduction_axis
    )
    # Flexion leaves its own axis alone, so the distal joints bend about the
    # flexion axis turned by the abduction only.
    distal_axis = _rotate_about(flexion_axis, abduction_axis, abduction)
    middle = _bend(bones[..., 0, :], bones[..., 1, :], distal_axis)
    distal = _bend(bones[..., 1, :], bones[..., 2, :], distal_axis)
    return np.stack([abduction, base_flexion, middle, distal], axis=-1)


def joints_to_angles(joints_mm: np.ndarray) -> np.ndarray:
    """Right-hand joints (..., 21, 3) in the hand frame (rest frame of the module
    docstring, global orient removed: see `hand_frame_joints`) -> (..., 20) float64
    radians in ANGLE_NAMES order.

    The inverse of forward_kinematics(angles_to_mano_pose(angles)) for joints of
    this 20-DOF model, at any bone lengths. For other joints (IK fits with twist and
    sideways bends, other hand models) it is a projection: base abduction within
    the plane the joint abducts in (the palm plane for fingers), flexion as the bend
    between consecutive bones about the flexion axis. Mirror a left hand (x -> -x)
    first. NaN joints give NaN angles.
    """
    joints = np.asarray(joints_mm, dtype=np.float64)
    angles = []
    for finger_index, finger in enumerate(FINGERS):
        first = 1 + 4 * finger_index
        chain = joints[..., first : first + 4, :]  # (..., 4, 3) base..tip
        bones = np.diff(chain, axis=-2)
        length = np.linalg.norm(bones, axis=-1, keepdims=True)
        angles.append(_finger_angles(bones / np.maximum(length, 1e-12), finger))
    return np.concatenate(angles, axis=-1)
