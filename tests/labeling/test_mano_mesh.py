"""MANO mesh vertices for label poses, on fabricated MANO-format pickles (the real
files are licensed)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from labeling.hand_model import load_hand_model, mirror_pose
from labeling.mano_mesh import (
    MeshUnavailableError,
    load_mano_mesh,
    mesh_faces,
    mesh_vertices_mm,
    outward_faces,
)
from tests.labeling.test_hand_model import random_poses, write_fake_mano

FINGERTIP_JOINTS = [4, 8, 12, 16, 20]  # MediaPipe thumb..pinky tips
FINGERTIP_VERTICES = [744, 320, 443, 554, 671]
MIRROR = np.array([-1.0, 1.0, 1.0])


def write_mirrored_left(root) -> None:
    """MANO_LEFT.pkl as the mirror image (x -> -x) of the fabricated right hand."""
    with open(root / "mano" / "MANO_RIGHT.pkl", "rb") as handle:
        model = pickle.load(handle)
    model["v_template"] = model["v_template"] * MIRROR
    model["shapedirs"] = model["shapedirs"] * MIRROR[:, None]
    with open(root / "mano" / "MANO_LEFT.pkl", "wb") as handle:
        pickle.dump(model, handle)


@pytest.fixture
def mano_dir(tmp_path):
    write_fake_mano(tmp_path)
    return tmp_path


def test_vertices_and_faces_have_manos_shapes(mano_dir):
    vertices = mesh_vertices_mm(random_poses(5, seed=1), mano_dir)
    assert vertices.shape == (5, 778, 3) and vertices.dtype == np.float32
    faces = mesh_faces(mano_dir)
    assert faces.shape == (1538, 3) and faces.dtype == np.int64
    assert faces.min() >= 0 and faces.max() < 778


def test_vertices_share_the_frame_of_the_models_joints(mano_dir):
    pose = random_poses(4, seed=2)
    vertices = mesh_vertices_mm(pose, mano_dir)
    joints = load_hand_model(str(mano_dir)).joints(torch.tensor(pose))
    joints = joints.detach().numpy()
    np.testing.assert_allclose(joints[:, 0], 0.0, atol=1e-4)  # wrist-relative
    np.testing.assert_allclose(
        vertices[:, FINGERTIP_VERTICES], joints[:, FINGERTIP_JOINTS], atol=1e-3
    )


def test_a_pose_turns_the_mesh(mano_dir):
    flat, bent = mesh_vertices_mm(
        np.stack([np.zeros(48), random_poses(1)[0]]), mano_dir
    )
    assert np.abs(flat - bent).max() > 1.0  # mm


def test_frames_without_a_pose_give_nan_vertices(mano_dir):
    pose = random_poses(3, seed=3).astype(np.float32)
    pose[1] = np.nan
    vertices = mesh_vertices_mm(pose, mano_dir)
    assert np.isnan(vertices[1]).all()
    assert np.isfinite(vertices[[0, 2]]).all()
    alone = mesh_vertices_mm(pose[2:], mano_dir)[0]
    np.testing.assert_allclose(vertices[2], alone, atol=1e-4)  # float32 batches


def test_without_a_left_file_the_left_hand_mirrors_the_right(mano_dir):
    pose = random_poses(3, seed=4)
    right = mesh_vertices_mm(pose, mano_dir)
    left = mesh_vertices_mm(mirror_pose(torch.tensor(pose)).numpy(), mano_dir, False)
    np.testing.assert_allclose(left, right * MIRROR, atol=1e-3)
    assert load_mano_mesh(mano_dir, is_right=False).mirrored
    # mirroring turns the triangles inside out; the faces are turned back
    right_faces = mesh_faces(mano_dir)
    np.testing.assert_array_equal(mesh_faces(mano_dir, False), right_faces[:, ::-1])


def test_a_left_file_is_used_for_left_hands(mano_dir):
    write_mirrored_left(mano_dir)
    pose = random_poses(3, seed=5)
    right = mesh_vertices_mm(pose, mano_dir)
    left_mesh = load_mano_mesh(mano_dir, is_right=False)
    assert not left_mesh.mirrored
    left = left_mesh.vertices_mm(mirror_pose(torch.tensor(pose)).numpy())
    np.testing.assert_allclose(left, right * MIRROR, atol=1e-3)


def test_a_folder_without_mano_files_says_which_file(tmp_path):
    with pytest.raises(MeshUnavailableError, match="MANO_RIGHT.pkl"):
        load_mano_mesh(tmp_path)
    with pytest.raises(MeshUnavailableError, match="MANO_LEFT.pkl"):
        load_mano_mesh(tmp_path, is_right=False)


def test_outward_faces_turns_an_inside_out_tetrahedron():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    outward = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    np.testing.assert_array_equal(outward_faces(vertices, outward), outward)
    np.testing.assert_array_equal(outward_faces(vertices, outward[:, ::-1]), outward)
