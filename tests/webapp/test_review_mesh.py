"""The review page's MANO mesh: the triangles in the overview and each frame's
vertices in label ranges when the server has MANO files (a fabricated pickle here),
and a note saying why not otherwise."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from django.conf import settings

from labeling.mano_mesh import mesh_vertices_mm
from recorder import session_review
from recorder.session_file import write_session
from tests.labeling.test_hand_model import random_poses, write_fake_mano
from tests.webapp.test_review import FRAMES, fabricated_recording, get_json

NO_POSE_FRAME = 4


def label_poses() -> np.ndarray:
    """(FRAMES, 48) poses, one frame without a fit (NaN)."""
    pose = random_poses(FRAMES, seed=11).astype(np.float32)
    pose[NO_POSE_FRAME] = np.nan
    return pose


@pytest.fixture
def make_posed(make_session, storage):
    """A complete session of `owner` whose labels have MANO poses (or none)."""

    def make(owner, with_pose: bool = True, handedness: str = "right"):
        recording = fabricated_recording()
        attrs = dataclasses.replace(recording.attrs, handedness=handedness)
        pose = label_poses() if with_pose else None
        recording = dataclasses.replace(recording, attrs=attrs, pose=pose)
        session = make_session(owner, status="complete")
        relative = f"sessions/mesh-{session.pk}.h5"
        path = settings.MEDIA_ROOT / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_session(path, recording)
        session.file.name = relative
        session.save(update_fields=["file"])
        return session

    return make


@pytest.fixture
def mano_dir(settings, tmp_path):
    folder = tmp_path / "mano-files"
    folder.mkdir()
    write_fake_mano(folder)
    settings.MANO_MODEL_DIR = str(folder)
    return folder


def test_with_mano_files_the_labels_carry_mesh_vertices(
    alice, alice_client, make_posed, mano_dir
):
    session = make_posed(alice)
    status, overview = get_json(alice_client, session, "overview", mesh=1)
    assert status == 200 and overview["mesh_note"] is None
    faces = np.array(overview["mesh_faces"])
    assert faces.shape == (1538, 3) and 0 <= faces.min() and faces.max() < 778

    status, labels = get_json(alice_client, session, "labels", start=0, end=1, mesh=1)
    assert status == 200 and labels["mesh_note"] is None
    vertices = labels["vertices_mm"]
    assert len(vertices) == len(labels["joints_mm"]) == 10
    assert vertices[NO_POSE_FRAME] is None  # no fit, no mesh
    shown = [k for k in range(10) if k != NO_POSE_FRAME]
    assert all(len(vertices[k]) == 778 * 3 for k in shown)
    expected = mesh_vertices_mm(label_poses()[shown], mano_dir)
    got = np.array([vertices[k] for k in shown]).reshape(-1, 778, 3)
    np.testing.assert_allclose(got, expected, atol=0.051)  # sent at 0.1 mm


def test_mesh_frames_are_thinned_harder(
    alice, alice_client, make_posed, mano_dir, monkeypatch
):
    monkeypatch.setattr(session_review, "MAX_MESH_FRAMES", 4)
    session = make_posed(alice)
    _, plain = get_json(alice_client, session, "labels", start=0, end=2)
    assert plain["stride"] == 1 and "vertices_mm" not in plain
    _, meshed = get_json(alice_client, session, "labels", start=0, end=2, mesh=1)
    assert meshed["stride"] == 5
    assert len(meshed["vertices_mm"]) == len(meshed["time_s"]) == 4


def test_a_left_session_gets_the_mirrored_mesh(
    alice, alice_client, make_posed, mano_dir
):
    session = make_posed(alice, handedness="left")
    _, labels = get_json(alice_client, session, "labels", start=0, end=0.3, mesh=1)
    expected = mesh_vertices_mm(label_poses()[:3], mano_dir, is_right=False)
    got = np.array(labels["vertices_mm"]).reshape(-1, 778, 3)
    np.testing.assert_allclose(got, expected, atol=0.051)


def test_only_the_owner_gets_the_mesh(alice, bob_client, make_posed, mano_dir):
    session = make_posed(alice)
    base = f"/sessions/{session.pk}/review/"
    assert bob_client.get(base + "overview", {"mesh": 1}).status_code == 404
    query = {"start": 0, "end": 1, "mesh": 1}
    assert bob_client.get(base + "labels", query).status_code == 404


def test_without_mano_files_there_is_no_mesh_and_a_note(
    alice, alice_client, make_posed, settings
):
    settings.MANO_MODEL_DIR = None
    session = make_posed(alice)
    _, overview = get_json(alice_client, session, "overview", mesh=1)
    assert overview["mesh_faces"] is None
    assert "MANO_MODEL_DIR" in overview["mesh_note"]
    status, labels = get_json(alice_client, session, "labels", start=0, end=1, mesh=1)
    assert status == 200 and labels["vertices_mm"] is None
    assert "MANO_MODEL_DIR" in labels["mesh_note"]
    assert len(labels["joints_mm"]) == 10  # the joints still come


def test_labels_without_poses_have_no_mesh(alice, alice_client, make_posed, mano_dir):
    session = make_posed(alice, with_pose=False)
    _, labels = get_json(alice_client, session, "labels", start=0, end=1, mesh=1)
    assert labels["vertices_mm"] is None and "no MANO poses" in labels["mesh_note"]


def test_a_missing_hand_file_is_a_note_not_an_error(
    alice, alice_client, make_posed, settings, tmp_path
):
    settings.MANO_MODEL_DIR = str(tmp_path / "empty")
    session = make_posed(alice)
    status, labels = get_json(alice_client, session, "labels", start=0, end=1, mesh=1)
    assert status == 200 and labels["vertices_mm"] is None
    assert "MANO_RIGHT.pkl" in labels["mesh_note"]
