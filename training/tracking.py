"""emg2pose's two tasks (001_*): regression, and tracking with the initial pose given.

- regression: the model hears a window of EMG and predicts the pose at its end,
  from nothing else (the zoo as it is).
- tracking: the model is also given the ground-truth joint angles at the window's
  START and predicts the pose at its end. As in emg2pose, the model tracks from
  that pose: vemg2pose integrates its angular velocities from it (no position
  phase); every other zoo model's output is read as the change since the window
  start and added to it (angle models: angles; joints-only models: joints, measured
  from the rest hand their heads start at). A window is scored only where both its
  start and its end have a valid label. The honest baseline is to hold the given
  start pose (`hold_pose`), beside the mean pose.

Live inference has no ground truth, so tracking models are for the benchmark only.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
from torch import nn

from training.data import DataError, WindowDataset, nearest_frames
from training.models import build_model
from training.models.hand import HandKinematics, rest_joints_mm

TASKS = ("regression", "tracking")


def check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")


class TrackingWindowDataset(WindowDataset):
    """WindowDataset whose items also hold the label at the window's first sample,
    initial_angles (20,) rad. Windows without a valid label at their start are left
    out."""

    def _index_windows(self, stride_samples: int) -> None:
        super()._index_windows(stride_samples)
        starts = self.window_end - self.window_samples + 1
        start_frames = np.full(len(starts), -1)
        for index, session in enumerate(self.sessions):
            mine = self.window_session == index
            frames = nearest_frames(session.frame_time, session.emg_time[starts[mine]])
            found = frames >= 0
            frames[found] = np.where(
                session.label_valid[frames[found]], frames[found], -1
            )
            start_frames[mine] = frames
        keep = start_frames >= 0
        if not keep.any():
            names = ", ".join(s.name for s in self.sessions)
            raise DataError(
                f"sessions {names}: no window has valid labels at both "
                "its start and its end, so none can be tracked"
            )
        self.window_session = self.window_session[keep]
        self.window_end = self.window_end[keep]
        self.window_frame = self.window_frame[keep]
        self.window_start_frame = start_frames[keep]

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        session = self.sessions[int(self.window_session[index])]
        frame = int(self.window_start_frame[index])
        item["initial_angles"] = torch.from_numpy(session.joint_angles[frame])
        return item


def task_dataset(task: str, *args, **kwargs) -> WindowDataset:
    """The windows for `task`; the arguments are WindowDataset's."""
    check_task(task)
    dataset_type = TrackingWindowDataset if task == "tracking" else WindowDataset
    return dataset_type(*args, **kwargs)


def takes_initial_angles(model: nn.Module) -> bool:
    """Whether the model's forward tracks from a given pose itself (vemg2pose)."""
    return "initial_angles" in inspect.signature(model.forward).parameters


class TrackingModel(nn.Module):
    """A zoo model that tracks from the ground-truth angles at the window start.
    forward(emg (B, T, C), initial_angles (B, 20) rad) -> the zoo's output dict."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base
        self.config = base.config
        self.kinematics = HandKinematics()
        self.register_buffer("rest_joints", rest_joints_mm(), persistent=False)

    def forward(self, emg: torch.Tensor, initial_angles=None) -> dict:
        if initial_angles is None:
            raise ValueError(
                "a tracking model needs the pose at the window start; "
                "live inference has none, use a regression model"
            )
        if takes_initial_angles(self.base):
            return self.base(emg, initial_angles=initial_angles)
        outputs = self.base(emg)
        if "angles" in outputs:
            angles = initial_angles + outputs["angles"]  # (B, 20) rad
            pose, joints = self.kinematics(angles)
            return {"joints": joints, "angles": angles, "pose": pose}
        _, initial_joints = self.kinematics(initial_angles)  # (B, 21, 3) mm
        return {"joints": initial_joints + outputs["joints"] - self.rest_joints}


def build_task_model(task: str, name: str, **config_values) -> nn.Module:
    """Zoo model `name` for `task` (see build_model for `config_values`)."""
    check_task(task)
    model = build_model(name, **config_values)
    return TrackingModel(model) if task == "tracking" else model


def model_outputs(model: nn.Module, batch: dict) -> dict:
    """The model's outputs on a batch (tensors on the model's device); tracking
    batches also hand over the window-start angles."""
    if "initial_angles" in batch:
        return model(batch["emg"], initial_angles=batch["initial_angles"])
    return model(batch["emg"])


def hold_pose(dataset: TrackingWindowDataset) -> dict:
    """The tracking baseline: the start pose held to the window end, for every
    window in dataset order: joints (W, 21, 3) mm, angles (W, 20) rad."""
    joints, angles = [], []
    for index, frame in zip(
        dataset.window_session, dataset.window_start_frame, strict=True
    ):
        session = dataset.sessions[int(index)]
        joints.append(session.joints_mm[frame])
        angles.append(session.joint_angles[frame])
    return {"joints": np.stack(joints), "angles": np.stack(angles)}
