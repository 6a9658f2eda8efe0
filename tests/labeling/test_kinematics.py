import numpy as np

from labeling.kinematics import (
    ANGLE_NAMES,
    FINGER_BASE_MM,
    FINGERS,
    FLEXION_AXES,
    JOINT_LIMITS_RAD,
    MANO_JOINT_NAMES,
    MEDIAPIPE_JOINT_NAMES,
    PHALANX_LENGTHS_MM,
    angles_to_mano_pose,
    axis_angle_to_matrix,
    bone_lengths_mm,
    forward_kinematics,
    hand_frame_joints,
    joints_to_angles,
)


def joints_for(joint_angles: np.ndarray) -> np.ndarray:
    return forward_kinematics(angles_to_mano_pose(joint_angles))


def fist_angles() -> np.ndarray:
    angles = np.zeros(20)
    angles[0:4] = [0.05, 0.7, 0.55, 0.9]
    for finger in range(1, 5):
        angles[4 * finger + 1 : 4 * finger + 4] = [1.45, 1.65, 1.0]
    return angles


def test_constants_have_the_documented_sizes():
    assert len(MEDIAPIPE_JOINT_NAMES) == 21
    assert len(MANO_JOINT_NAMES) == 16
    assert len(ANGLE_NAMES) == 20
    assert ANGLE_NAMES[0] == "thumb_cmc_abduction"
    assert ANGLE_NAMES[5] == "index_mcp_flexion"
    assert JOINT_LIMITS_RAD.shape == (20, 2)
    assert np.all(JOINT_LIMITS_RAD[:, 0] < JOINT_LIMITS_RAD[:, 1])


def test_rest_pose_bone_lengths_match_the_constants():
    lengths = bone_lengths_mm(joints_for(np.zeros(20))).reshape(5, 4)
    for row, finger in enumerate(FINGERS):
        expected = [np.linalg.norm(FINGER_BASE_MM[finger]), *PHALANX_LENGTHS_MM[finger]]
        np.testing.assert_allclose(lengths[row], expected, atol=1e-9)


def test_rest_pose_follows_the_documented_frame():
    joints = joints_for(np.zeros(20))
    assert np.all(joints[0] == 0)
    assert joints[12, 1] > 170  # middle tip along +y
    assert joints[4, 0] > joints[20, 0]  # thumb on +x, pinky on -x
    np.testing.assert_allclose(joints[5:, 2], 0.0, atol=1e-9)  # flat fingers


def test_index_mcp_flexion_moves_the_tip_to_the_palm_side_and_keeps_lengths():
    angles = np.zeros(20)
    angles[5] = np.pi / 2
    rest, flexed = joints_for(np.zeros(20)), joints_for(angles)
    index_tip = MEDIAPIPE_JOINT_NAMES.index("index_tip")
    index_mcp = MEDIAPIPE_JOINT_NAMES.index("index_mcp")
    assert flexed[index_tip, 2] - rest[index_tip, 2] > 80  # toward the palm (+z)
    assert abs(flexed[index_tip, 1] - flexed[index_mcp, 1]) < 1.0  # now perpendicular
    np.testing.assert_allclose(bone_lengths_mm(flexed), bone_lengths_mm(rest))
    np.testing.assert_allclose(flexed[9:], rest[9:])  # other fingers untouched


def test_fist_brings_fingertips_near_the_palm():
    open_joints, fist_joints = joints_for(np.zeros(20)), joints_for(fist_angles())
    tips = [8, 12, 16, 20]
    open_reach = np.linalg.norm(open_joints[tips], axis=-1)
    fist_reach = np.linalg.norm(fist_joints[tips], axis=-1)
    assert np.all(open_reach > 140) and np.all(open_reach < 200)
    assert np.all(fist_reach < 100)
    tip_to_mcp = np.linalg.norm(
        fist_joints[tips] - fist_joints[[5, 9, 13, 17]], axis=-1
    )
    assert np.all(tip_to_mcp < 60)
    np.testing.assert_allclose(
        bone_lengths_mm(fist_joints), bone_lengths_mm(open_joints)
    )


def test_flexion_only_pose_is_angle_times_flexion_axis():
    angles = np.zeros(20)
    angles[6] = 0.8  # index PIP -> MANO joint index2 (slot 1)
    pose = angles_to_mano_pose(angles)
    np.testing.assert_allclose(pose[6:9], 0.8 * FLEXION_AXES[1], atol=1e-6)
    assert pose.dtype == np.float32


def test_batched_shapes_and_scale():
    angles = np.random.default_rng(0).uniform(
        JOINT_LIMITS_RAD[:, 0], JOINT_LIMITS_RAD[:, 1], (4, 7, 20)
    )
    pose = angles_to_mano_pose(angles)
    assert pose.shape == (4, 7, 48)
    joints = forward_kinematics(pose, bone_scale=1.1)
    assert joints.shape == (4, 7, 21, 3)
    np.testing.assert_allclose(joints[2, 3], 1.1 * forward_kinematics(pose[2, 3]))


def random_angles(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    low, high = JOINT_LIMITS_RAD[:, 0], JOINT_LIMITS_RAD[:, 1]
    return np.random.default_rng(seed).uniform(low, high, shape + (20,))


def test_joints_to_angles_inverts_the_hand_model_over_the_joint_ranges():
    angles = random_angles((2000,))
    recovered = joints_to_angles(joints_for(angles))
    assert recovered.shape == (2000, 20)
    np.testing.assert_allclose(recovered, angles, atol=1e-4)
    np.testing.assert_allclose(joints_to_angles(joints_for(fist_angles())),
                               fist_angles(), atol=1e-5)  # fmt: skip


def test_joints_to_angles_ignores_bone_lengths_and_keeps_batch_shapes():
    angles = random_angles((3, 4), seed=1)
    pose = angles_to_mano_pose(angles)
    recovered = joints_to_angles(forward_kinematics(pose, bone_scale=0.8))
    np.testing.assert_allclose(recovered, angles, atol=1e-4)


def test_joints_to_angles_projects_other_joints_smoothly():
    angles = random_angles((200,), seed=2) * 0.8  # away from the range ends
    joints = joints_for(angles)
    noise = np.random.default_rng(3).normal(0, 0.5, joints.shape)  # 0.5 mm
    noise[:, 0] = 0.0
    recovered = joints_to_angles(joints + noise)
    assert np.isfinite(recovered).all()
    assert np.degrees(np.abs(recovered - angles)).mean() < 2.0
    assert np.isnan(joints_to_angles(np.full((21, 3), np.nan))).all()


def test_index_flexion_reads_as_index_flexion_only():
    angles = np.zeros(20)
    angles[ANGLE_NAMES.index("index_pip_flexion")] = 1.2
    recovered = joints_to_angles(joints_for(angles))
    np.testing.assert_allclose(recovered, angles, atol=1e-6)


def test_hand_frame_joints_removes_the_global_orient():
    angles = random_angles((5,), seed=4)
    orient = np.random.default_rng(5).normal(0, 1.0, (5, 3))
    pose = angles_to_mano_pose(angles, orient)
    world = forward_kinematics(pose) + np.array([10.0, -20.0, 30.0])  # off origin
    hand = hand_frame_joints(world, pose)
    np.testing.assert_allclose(hand, joints_for(angles), atol=1e-4)
    rotation = axis_angle_to_matrix(orient[0])
    np.testing.assert_allclose(rotation @ hand[0, 8], world[0, 8] - world[0, 0],
                               atol=1e-4)  # fmt: skip
