import dataclasses
import json

import numpy as np
import pytest
import torch

from labeling import kinematics as kin
from training.models import (
    MODEL_NAMES,
    build_model,
    config_class,
    count_parameters,
    model_from_config,
)
from training.models.hand import HandKinematics

OVERFIT_STEPS = 50


def emg_window(model, batch: int = 2, seed: int = 0) -> torch.Tensor:
    config = model.config
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, config.window_samples, config.num_channels)
    return torch.randn(shape, generator=generator)


def random_angles(count: int, seed: int = 0) -> np.ndarray:
    """(count, 20) rad within the anatomical limits."""
    limits = kin.JOINT_LIMITS_RAD
    return np.random.default_rng(seed).uniform(limits[:, 0], limits[:, 1], (count, 20))


def test_the_zoo_has_the_seed_models_the_baselines_and_ours():
    assert set(MODEL_NAMES) >= {"v4", "v5", "vemg2pose", "neuropose", "tcn"}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_it_maps_a_window_to_joints_at_the_window_end(name):
    model = build_model(name).eval()
    assert model.config.num_channels == 8
    assert model.config.sampling_rate_hz == 500.0
    with torch.no_grad():
        outputs = model(emg_window(model))
    assert outputs["joints"].shape == (2, 21, 3)
    assert outputs["joints"].dtype == torch.float32
    assert torch.isfinite(outputs["joints"]).all()
    if "angles" in outputs:
        assert outputs["angles"].shape == (2, 20)
    if "pose" in outputs:
        assert outputs["pose"].shape == (2, 48)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_it_works_with_16_channels_at_2_khz(name):
    model = build_model(name, num_channels=16, sampling_rate_hz=2000.0).eval()
    with torch.no_grad():
        outputs = model(emg_window(model))
    assert outputs["joints"].shape == (2, 21, 3)
    assert torch.isfinite(outputs["joints"]).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_it_rebuilds_identically_from_its_saved_config(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    saved = json.loads(json.dumps(dataclasses.asdict(model.config)))
    rebuilt = model_from_config(name, saved).eval()
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.config == model.config
    emg = emg_window(model, batch=3)
    with torch.no_grad():
        expected, got = model(emg), rebuilt(emg)
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_config_has_the_shared_fields(name):
    config = config_class(name)()
    assert isinstance(config.window_samples, int) and config.window_samples > 0
    assert config.num_channels == 8 and config.sampling_rate_hz == 500.0
    json.dumps(dataclasses.asdict(config))


def test_an_unknown_model_name_lists_the_names():
    with pytest.raises(ValueError, match="v5.*tcn"):
        build_model("v6")
    with pytest.raises(ValueError, match="unknown model 'v6'"):
        config_class("v6")


def test_an_unknown_setting_is_named():
    with pytest.raises(ValueError, match="'hiden'"):
        build_model("tcn", hiden=32)
    saved = dataclasses.asdict(build_model("v5").config) | {"colour": "red"}
    with pytest.raises(ValueError, match="'colour'"):
        model_from_config("v5", saved)


def test_impossible_settings_are_named():
    with pytest.raises(ValueError, match="num_channels"):
        build_model("v5", num_channels=0)
    with pytest.raises(ValueError, match="dilations"):
        build_model("tcn", dilations=(1, 3, 4))
    with pytest.raises(ValueError, match="window_samples"):
        build_model("vemg2pose", window_samples=40)


def test_the_seed_models_follow_the_paper():
    for name in ("v4", "v5"):
        model = build_model(name)
        assert model.config.window_samples == 50  # 100 ms at 500 Hz
        assert 0.9e6 < count_parameters(model) < 1.1e6  # the seed's ~1.0M


def test_our_model_is_small_enough_for_a_cpu_budget():
    assert count_parameters(build_model("tcn")) < 300_000


def test_v4_with_a_zero_output_gives_the_flat_rest_hand():
    model = build_model("v4").eval()
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    with torch.no_grad():
        outputs = model(emg_window(model))
    rest = torch.tensor(kin.rest_joints_mm(), dtype=torch.float32)
    torch.testing.assert_close(outputs["joints"], rest.expand(2, 21, 3))
    assert not outputs["pose"].any()


def test_torch_angles_to_joints_equals_the_numpy_kinematics():
    angles = random_angles(200)
    angles[0] = 0.0  # the rest hand
    pose = kin.angles_to_mano_pose(angles)
    joints = kin.forward_kinematics(pose.astype(np.float64))
    got_pose, got_joints = HandKinematics().double()(torch.from_numpy(angles))
    np.testing.assert_allclose(got_pose.numpy(), pose, atol=1e-6)
    assert np.abs(got_joints.numpy() - joints).max() < 1e-4  # mm
    _, joints32 = HandKinematics()(torch.from_numpy(angles).float())
    assert np.abs(joints32.numpy() - joints).max() < 1e-3  # mm, float32


def test_hand_kinematics_has_a_finite_gradient_at_the_rest_hand():
    angles = torch.zeros(2, 20, requires_grad=True)
    HandKinematics()(angles)[1].sum().backward()
    assert torch.isfinite(angles.grad).all() and angles.grad.abs().sum() > 0


def test_hand_kinematics_keeps_no_weights_in_checkpoints():
    assert HandKinematics().state_dict() == {}
    assert not any("hand" in key for key in build_model("v4").state_dict())


@pytest.mark.parametrize("name", ["v4", "vemg2pose", "neuropose", "tcn"])
def test_kinematic_models_keep_the_wrist_at_the_origin(name):
    model = build_model(name).eval()
    with torch.no_grad():
        joints = model(emg_window(model))["joints"]
    assert not joints[:, 0].any()


def overfit_losses(name: str) -> tuple[list[float], float]:
    """Train on one fixed batch of 8 windows: the trainer's loss per step, and the
    MPJPE of always predicting the batch's mean pose."""
    torch.manual_seed(0)
    model = build_model(name).train()
    emg = emg_window(model, batch=8, seed=1)
    angles = torch.from_numpy(random_angles(8, seed=2)).float()
    joints = HandKinematics()(angles)[1]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(OVERFIT_STEPS):
        optimizer.zero_grad()
        outputs = model(emg)
        loss = (outputs["joints"] - joints).norm(dim=-1).mean()
        if "angles" in outputs:
            loss = loss + 20.0 * (outputs["angles"] - angles).abs().mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    mean_pose_mpjpe = (joints - joints.mean(0)).norm(dim=-1).mean().item()
    return losses, mean_pose_mpjpe


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_it_can_overfit_a_tiny_batch(name):
    losses, _ = overfit_losses(name)
    assert np.mean(losses[-5:]) < 0.6 * losses[0]


def test_tcn_fits_each_window_not_just_the_mean_pose():
    losses, mean_pose_mpjpe = overfit_losses("tcn")
    assert np.mean(losses[-5:]) < 0.5 * mean_pose_mpjpe


def test_tcn_output_at_a_frame_ignores_later_samples():
    model = build_model("tcn").eval()
    frame = model.config.frame_samples
    emg = emg_window(model, batch=2)
    later = emg.clone()
    later[:, -3 * frame :] = 100.0 * torch.randn(2, 3 * frame)[..., None]
    with torch.no_grad():
        before = model.frame_features(emg)
        after = model.frame_features(later)
    torch.testing.assert_close(after[..., :-3], before[..., :-3], rtol=0, atol=0)
    assert not torch.allclose(after[..., -1], before[..., -1])


def test_tcn_streams_to_exactly_the_window_result():
    model = build_model("tcn").eval()
    config = model.config
    stream = torch.randn(1, config.window_samples + 6 * config.frame_samples, 8)
    with torch.no_grad():
        streamed = model.frame_features(stream)  # (1, H, frames): every frame
        for back in range(6):
            end = stream.shape[1] - back * config.frame_samples
            window = stream[:, end - config.window_samples : end]
            torch.testing.assert_close(
                model.end_features(window), streamed[..., -1 - back]
            )


def test_tcn_window_is_its_receptive_field():
    model = build_model("tcn").eval()
    assert model.config.window_samples == model.config.receptive_field_samples
    emg = emg_window(model)
    changed = emg.clone()
    changed[:, 0] += 10.0  # the oldest sample still matters
    with torch.no_grad():
        assert not torch.equal(model(emg)["joints"], model(changed)["joints"])
