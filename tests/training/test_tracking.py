"""The tracking task (start pose given) against regression."""

import dataclasses

import numpy as np
import pytest
import torch

from tests.training.sessions import labeled_recording
from training.data import WindowDataset, fit_normalization, from_recording
from training.models import build_model
from training.models.hand import HandKinematics, rest_joints_mm
from training.preprocessing import FilterConfig
from training.tracking import (
    TrackingModel,
    TrackingWindowDataset,
    build_task_model,
    hold_pose,
    model_outputs,
)

WINDOW = 100  # 0.2 s at 500 Hz


@pytest.fixture(scope="module")
def session():
    labeled = from_recording(labeled_recording(seconds=4.0), "s")
    valid = labeled.label_valid.copy()
    valid[30:45] = False  # a lost hand for half a second
    return dataclasses.replace(labeled, label_valid=valid)


def datasets(session):
    normalization = fit_normalization([session], FilterConfig())
    args = ([session], WINDOW, 10, FilterConfig(), normalization)
    return WindowDataset(*args), TrackingWindowDataset(*args)


def test_tracking_windows_carry_the_label_at_their_start(session):
    regression, tracking = datasets(session)
    start_times = session.emg_time[tracking.window_end - WINDOW + 1]
    frame_times = session.frame_time[tracking.window_start_frame]
    assert np.abs(start_times - frame_times).max() <= 1 / 60  # the nearest frame
    assert session.label_valid[tracking.window_start_frame].all()
    # windows that start in the lost stretch cannot be tracked: fewer windows
    assert len(regression) > len(tracking) > 0
    assert set(tracking.window_end) < set(regression.window_end)
    item = tracking[3]
    frame = tracking.window_start_frame[3]
    np.testing.assert_array_equal(item["initial_angles"], session.joint_angles[frame])
    np.testing.assert_array_equal(
        hold_pose(tracking)["angles"][3], session.joint_angles[frame]
    )
    assert "initial_angles" not in regression[3]


def test_angle_models_track_by_adding_their_output_to_the_start_pose():
    torch.manual_seed(0)
    base = build_model("tcn", window_samples=200)
    tracker = TrackingModel(base).eval()
    emg = torch.randn(2, 200, 8)
    start = torch.rand(2, 20) * 0.5
    with torch.no_grad():
        tracked, regressed = tracker(emg, start), base(emg)
        moved = tracker(emg, start + 0.1)
    torch.testing.assert_close(tracked["angles"], start + regressed["angles"])
    torch.testing.assert_close(moved["angles"], tracked["angles"] + 0.1)
    _, joints = HandKinematics()(tracked["angles"])
    torch.testing.assert_close(tracked["joints"], joints)


def test_joint_models_track_by_moving_the_start_hand():
    torch.manual_seed(0)
    base = build_model("v5")
    tracker = TrackingModel(base).eval()
    emg, start = torch.randn(2, 50, 8), torch.rand(2, 20) * 0.5
    with torch.no_grad():
        tracked, regressed = tracker(emg, start), base(emg)
    _, start_joints = HandKinematics()(start)
    torch.testing.assert_close(
        tracked["joints"], start_joints + regressed["joints"] - rest_joints_mm()
    )


def test_vemg2pose_integrates_from_the_given_pose():
    torch.manual_seed(0)
    model = build_task_model("tracking", "vemg2pose").eval()
    with torch.no_grad():  # no velocity at all: the start pose is held
        velocity_rows = model.base.decoder.out.weight[20:]
        velocity_rows.zero_()
        model.base.decoder.out.bias[20:] = 0.0
        start = torch.rand(2, 20) * 0.5
        outputs = model_outputs(
            model, {"emg": torch.randn(2, 500, 8), "initial_angles": start}
        )
    torch.testing.assert_close(outputs["angles"], start)


def test_a_tracking_model_without_a_start_pose_is_refused():
    model = build_task_model("tracking", "v5")
    with pytest.raises(ValueError, match="needs the pose at the window start"):
        model(torch.randn(1, 50, 8))
    with pytest.raises(ValueError, match="task must be one of"):
        build_task_model("tracing", "v5")
