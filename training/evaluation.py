"""Evaluating a model on windowed sessions, always beside the mean-pose baseline.

Angles: a model that predicts joint angles is scored on them; for a model that
predicts joints only, its angles are measured on its joints
(`labeling.kinematics.joints_to_angles`), the same way as for the labels' joints
when a session file holds no angles.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from labeling.kinematics import joints_to_angles
from training import metrics
from training.tracking import model_outputs

PREDICT_BATCH = 1024


@torch.no_grad()
def predict(model: torch.nn.Module, dataset) -> dict:
    """Predictions and targets over every window of `dataset`, in dataset order:
    joints (W, 21, 3) mm, angles (W, 20) rad, and the targets' true_joints and
    true_angles."""
    model.eval()
    device = next(model.parameters()).device
    gathered = {"joints": [], "angles": [], "true_joints": [], "true_angles": []}
    for batch in DataLoader(dataset, batch_size=PREDICT_BATCH):
        inputs = {key: batch[key].to(device) for key in ("emg", "initial_angles")
                  if key in batch}  # fmt: skip
        outputs = model_outputs(model, inputs)
        joints = outputs["joints"].float().cpu().numpy()
        gathered["joints"].append(joints)
        if "angles" in outputs:
            gathered["angles"].append(outputs["angles"].float().cpu().numpy())
        else:
            gathered["angles"].append(joints_to_angles(joints).astype(np.float32))
        gathered["true_joints"].append(batch["joints"].numpy())
        gathered["true_angles"].append(batch["angles"].numpy())
    return {key: np.concatenate(values) for key, values in gathered.items()}


def evaluate_model(model: torch.nn.Module, dataset, baseline_pose: dict) -> dict:
    """{"model": metrics, "baseline": the same metrics for the training mean pose,
    "windows": W}; sequences for jitter are the dataset's sessions."""
    if len(dataset) == 0:
        raise ValueError("there are no labeled windows to evaluate on")
    predicted = predict(model, dataset)
    sequence_ids = np.asarray(dataset.window_session)
    scores = metrics.evaluate(
        predicted["joints"], predicted["true_joints"], predicted["angles"],
        predicted["true_angles"], sequence_ids,
    )  # fmt: skip
    baseline = metrics.mean_pose_baseline(
        np.asarray(baseline_pose["joints_mm"])[None],
        np.asarray(baseline_pose["angles_rad"])[None],
        predicted["true_joints"], predicted["true_angles"], sequence_ids,
    )  # fmt: skip
    return {"model": scores, "baseline": baseline, "windows": len(dataset)}


def mean_targets(dataset) -> dict:
    """The mean joints (21, 3) mm and angles (20,) rad over a dataset's windows:
    the mean-pose baseline's constant prediction."""
    joints_sum, angles_sum, count = 0.0, 0.0, 0
    for batch in DataLoader(dataset, batch_size=PREDICT_BATCH):
        joints_sum = joints_sum + batch["joints"].double().sum(0)
        angles_sum = angles_sum + batch["angles"].double().sum(0)
        count += len(batch["joints"])
    if count == 0:
        raise ValueError("there are no labeled windows to train on")
    return {
        "joints_mm": (joints_sum / count).numpy(),
        "angles_rad": (angles_sum / count).numpy(),
    }
