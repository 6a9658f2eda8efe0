"""MANO's mesh for label poses, for pages that draw the hand as a skin, not a skeleton.

`load_mano_mesh(mano_dir, is_right)` gives a `ManoMesh` (cached per folder and hand):
- `vertices_mm(pose)`: label poses (M, 48), as stored in session files, to mesh
  vertices (M, 778, 3) float32 mm, wrist at the origin: the frame the pages draw
  `joints` in (`ManoHandModel.joints` of the same pose lands on the same points).
  Rows whose pose has a NaN (frames without a fit) come back NaN.
- `faces`: (1538, 3) int64 triangles, wound so that their normals point out of
  the hand (the renderer lights front faces only).

A left hand uses `MANO_LEFT.pkl` when the folder has it: that is the model the IK
labeler fits left hands with (`labeling.pipeline`). Without it, the left hand is the
mirror image of `MANO_RIGHT.pkl` through x = 0, the convention of the built-in model
(`hand_model` docstring), so a left session still shows a mesh.

The MANO files are licence-restricted and supplied by the user; this module only
reads them. CPU, batched, no gradients.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from labeling.hand_model import ManoHandModel, mirror_joints, mirror_pose

VERTEX_COUNT = 778
BATCH_FRAMES = 256  # poses per forward pass: bounds memory on long ranges


class MeshUnavailableError(FileNotFoundError):
    """No MANO model for this hand in the folder; the message names the file."""


@dataclass(frozen=True)
class ManoMesh:
    """MANO's mesh for one hand. `mirrored`: a left hand drawn as the mirror
    image of the right-hand model."""

    model: ManoHandModel
    mirrored: bool
    faces: np.ndarray  # (F, 3) int64, outward winding

    def vertices_mm(self, pose) -> np.ndarray:
        """(M, 48) poses (rad) -> (M, 778, 3) float32 vertices, mm, wrist-relative;
        NaN rows where the pose has a NaN."""
        pose = np.asarray(pose, dtype=np.float32).reshape(-1, 48)
        vertices = np.full((len(pose), VERTEX_COUNT, 3), np.nan, np.float32)
        fitted = np.flatnonzero(np.isfinite(pose).all(axis=1))
        for start in range(0, len(fitted), BATCH_FRAMES):
            rows = fitted[start : start + BATCH_FRAMES]
            vertices[rows] = self._vertices(torch.from_numpy(pose[rows]))
        return vertices

    @torch.no_grad()
    def _vertices(self, pose: torch.Tensor) -> np.ndarray:
        dtype = self.model.layer.v_template.dtype
        pose = pose.to(dtype)
        if not self.mirrored:
            return self.model.vertices(pose).float().numpy()
        # the mirror hand's pose through the right-hand model, then mirrored back
        return mirror_joints(self.model.vertices(mirror_pose(pose))).float().numpy()


def model_path(mano_dir: str | os.PathLike, is_right: bool) -> str:
    name = "MANO_RIGHT.pkl" if is_right else "MANO_LEFT.pkl"
    return os.path.join(mano_dir, "mano", name)


def load_mano_mesh(mano_dir: str | os.PathLike, is_right: bool = True) -> ManoMesh:
    """The mesh of one hand from the MANO files in `mano_dir`; raises
    MeshUnavailableError when the folder has no model that can draw it."""
    mano_dir = os.fspath(mano_dir)
    # the files' size and mtime are in the key, so replacing a file is picked up
    stamps = tuple(_stamp(model_path(mano_dir, right)) for right in (True, False))
    return _load(mano_dir, is_right, stamps)


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=4)
def _load(mano_dir: str, is_right: bool, stamps) -> ManoMesh:
    right_stamp, left_stamp = stamps
    if is_right or left_stamp is not None:
        if (right_stamp if is_right else left_stamp) is None:
            raise MeshUnavailableError(f"no MANO model at {model_path(mano_dir, True)}")
        model, mirrored = ManoHandModel(mano_dir, is_right=is_right), False
    elif right_stamp is not None:
        model, mirrored = ManoHandModel(mano_dir, is_right=True), True
    else:
        raise MeshUnavailableError(
            f"no MANO model at {model_path(mano_dir, False)} "
            f"or {model_path(mano_dir, True)}"
        )
    model.eval()
    mesh = ManoMesh(model, mirrored, np.zeros((0, 3), np.int64))
    rest_mm = mesh.vertices_mm(np.zeros((1, 48), np.float32))[0]
    faces = np.asarray(model.layer.faces, dtype=np.int64)
    return ManoMesh(model, mirrored, outward_faces(rest_mm, faces))


def outward_faces(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """`faces` (F, 3), reversed if needed so that the mesh's signed volume is
    positive, i.e. normals point outwards. Mirroring a mesh turns its triangles
    inside out, and a left-hand file may share the right hand's winding."""
    a, b, c = (vertices[faces[:, k]].astype(np.float64) for k in range(3))
    signed_volume = np.einsum("ij,ij->", a, np.cross(b, c)) / 6.0
    return faces if signed_volume >= 0 else faces[:, ::-1].copy()


def mesh_vertices_mm(
    pose, mano_dir: str | os.PathLike, is_right: bool = True
) -> np.ndarray:
    """(M, 48) label poses -> (M, 778, 3) float32 MANO vertices, mm, wrist-relative."""
    return load_mano_mesh(mano_dir, is_right).vertices_mm(pose)


def mesh_faces(mano_dir: str | os.PathLike, is_right: bool = True) -> np.ndarray:
    """(1538, 3) int64 MANO triangles, outward winding, for that hand."""
    return load_mano_mesh(mano_dir, is_right).faces
