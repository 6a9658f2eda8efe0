import pickle

import numpy as np
import pytest
import torch

from labeling import kinematics as kin
from labeling.hand_model import (
    HandModel,
    ManoHandModel,
    load_hand_model,
    mirror_pose,
    scale_bones,
)


def random_poses(count: int, seed: int = 0, margin: float = 0.0) -> np.ndarray:
    """MANO poses (count, 48) from anatomical angles inside the joint limits,
    `margin` (fraction of each range) away from them."""
    rng = np.random.default_rng(seed)
    low, high = kin.JOINT_LIMITS_RAD.T
    span = high - low
    angles = rng.uniform(low + margin * span, high - margin * span, (count, 20))
    orient = rng.normal(0.0, 0.6, (count, 3))
    return kin.angles_to_mano_pose(angles, orient)


def test_torch_joints_equal_numpy_kinematics():
    pose = random_poses(64)
    model = HandModel(dtype=torch.float64)
    joints = model.joints(torch.tensor(pose, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(joints, kin.forward_kinematics(pose), atol=1e-8)


def test_float32_model_agrees_to_a_micrometre():
    pose = random_poses(16, seed=1)
    joints = HandModel().joints(torch.tensor(pose)).numpy()
    np.testing.assert_allclose(joints, kin.forward_kinematics(pose), atol=1e-3)


def test_rest_joints_match_kinematics():
    rest = HandModel(dtype=torch.float64).rest_joints_mm.numpy()
    np.testing.assert_allclose(rest, kin.rest_joints_mm(), atol=1e-9)


def test_uniform_bone_scale_scales_the_hand():
    pose = torch.tensor(random_poses(4, seed=2), dtype=torch.float64)
    model = HandModel(dtype=torch.float64)
    scaled = model.joints(pose, torch.full((4, 20), 1.1, dtype=torch.float64))
    torch.testing.assert_close(scaled, 1.1 * model.joints(pose))


def test_bone_scale_changes_only_that_bone_length():
    pose = random_poses(3, seed=3)
    scale = np.ones((3, 20))
    scale[:, 6] = 1.3  # index PIP->DIP
    model = HandModel(dtype=torch.float64)
    pose64 = torch.tensor(pose, dtype=torch.float64)
    joints = model.joints(pose64, torch.tensor(scale)).numpy()
    expected = kin.bone_lengths_mm(kin.forward_kinematics(pose)) * scale
    np.testing.assert_allclose(kin.bone_lengths_mm(joints), expected, atol=1e-9)
    rescaled = scale_bones(
        torch.tensor(kin.forward_kinematics(pose)), torch.tensor(scale)
    )
    np.testing.assert_allclose(rescaled.numpy(), joints, atol=1e-9)


def test_gradients_flow_to_every_finger_parameter():
    pose = torch.tensor(random_poses(2, seed=4), requires_grad=True)
    HandModel().joints(pose).square().sum().backward()
    assert torch.isfinite(pose.grad).all()
    assert (pose.grad[:, 3:].abs().reshape(2, 15, 3).sum(-1) > 0).all()


def test_gradient_is_finite_at_the_flat_hand():
    pose = torch.zeros(1, 48, requires_grad=True)
    HandModel().joints(pose).sum().backward()
    assert torch.isfinite(pose.grad).all()


def test_joint_limit_penalty_is_zero_inside_the_limits():
    pose = torch.tensor(random_poses(200, seed=5, margin=0.1))
    assert HandModel().joint_limit_penalty(pose).abs().max() == 0


def test_joint_limit_penalty_is_positive_beyond_a_limit():
    model = HandModel()
    for angle_index, beyond in [(5, 2.2), (6, -0.4), (4, 0.7), (1, -1.0)]:
        angles = np.zeros((1, 20))
        angles[0, angle_index] = beyond  # index flexion 126°, hyperextended PIP, ...
        pose = torch.tensor(kin.angles_to_mano_pose(angles))
        assert model.joint_limit_penalty(pose)[0] > 0, kin.ANGLE_NAMES[angle_index]


def test_joint_limit_penalty_pulls_back_inside():
    angles = np.zeros((1, 20))
    angles[0, 6] = 2.5  # index PIP flexion 143°, limit 110°
    pose = torch.tensor(kin.angles_to_mano_pose(angles), requires_grad=True)
    HandModel().joint_limit_penalty(pose).sum().backward()
    pip_axis = torch.tensor(kin.FLEXION_AXES[1], dtype=torch.float32)
    assert (pose.grad[0, 6:9] @ pip_axis) > 0  # descending reduces flexion


def test_left_hand_is_the_mirror_of_the_right():
    pose = torch.tensor(random_poses(8, seed=6))
    right = HandModel().joints(pose)
    left = HandModel(is_right=False).joints(mirror_pose(pose))
    torch.testing.assert_close(left, right * torch.tensor([-1.0, 1.0, 1.0]))
    assert HandModel(is_right=False).rest_joints_mm[1, 0] < 0  # thumb on -x


def test_left_hand_limits_mirror_the_right():
    pose = torch.tensor(random_poses(8, seed=7))
    left = HandModel(is_right=False).joint_limit_penalty(mirror_pose(pose))
    torch.testing.assert_close(left, HandModel().joint_limit_penalty(pose))


def write_fake_mano(root) -> None:
    """A MANO-format pickle with synthetic values (the real files are licensed)."""
    rng = np.random.default_rng(0)
    template = rng.normal(0.0, 0.03, (778, 3))
    regressor = np.zeros((16, 778))
    for joint in range(16):
        regressor[joint, joint * 40 : joint * 40 + 40] = 1.0 / 40
    weights = np.zeros((778, 16))
    weights[np.arange(778), np.minimum(np.arange(778) // 40, 15)] = 1.0
    parents = [4294967295, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
    model = {
        "v_template": template,
        "shapedirs": np.zeros((778, 3, 10)),
        "posedirs": np.zeros((778, 3, 135)),
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": np.array([parents, list(range(16))], dtype=np.int64),
        "f": rng.integers(0, 778, (1538, 3)).astype(np.uint32),
        "hands_components": np.eye(45),
        "hands_mean": np.zeros(45),
    }
    (root / "mano").mkdir()
    with open(root / "mano" / "MANO_RIGHT.pkl", "wb") as handle:
        pickle.dump(model, handle)


def test_mano_backend_gives_mediapipe_joints_and_vertices(tmp_path):
    write_fake_mano(tmp_path)
    model = load_hand_model(str(tmp_path))
    assert isinstance(model, ManoHandModel)
    pose = torch.tensor(random_poses(3, seed=8), requires_grad=True)
    joints = model.joints(pose)
    assert joints.shape == (3, 21, 3)
    assert torch.all(joints[:, 0] == 0)
    assert model.vertices(pose).shape == (3, 778, 3)
    joints.sum().backward()
    assert torch.isfinite(pose.grad).all()


def test_mano_joints_follow_the_mediapipe_order(tmp_path):
    write_fake_mano(tmp_path)
    model = load_hand_model(str(tmp_path))
    rest_m = model.layer().joints[0, :16].detach().numpy()
    rest_m = rest_m - rest_m[0]
    joints = model.rest_joints_mm.detach().numpy()
    np.testing.assert_allclose(joints[5], rest_m[1] * 1000, atol=1e-3)  # index MCP
    np.testing.assert_allclose(joints[1], rest_m[13] * 1000, atol=1e-3)  # thumb CMC
    vertices = model.vertices(torch.zeros(1, 48))[0].detach().numpy()
    np.testing.assert_allclose(joints[4], vertices[744], atol=1e-3)  # thumb tip


def test_without_mano_files_the_builtin_model_is_used(tmp_path):
    assert isinstance(load_hand_model(None), HandModel)
    with pytest.raises(FileNotFoundError):
        load_hand_model(str(tmp_path))
