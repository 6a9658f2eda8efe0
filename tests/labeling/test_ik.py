import math

import numpy as np
import pytest
import torch

from labeling import alignment, analytic_ik, ik
from labeling.ik import IKConfig, StreamingIK, fit_sequence
from recorder.simulation import ArmbandSimulator, SimulatorConfig


def rotation_about(axis, angle_rad: float) -> torch.Tensor:
    from labeling.hand_model import axis_angle_to_matrix

    axis = torch.tensor(axis, dtype=torch.float64)
    return axis_angle_to_matrix(axis / axis.norm() * angle_rad)


def umeyama_error_mm(points_mm: np.ndarray, truth_mm: np.ndarray) -> float:
    """Mean joint distance (mm) after a similarity alignment onto the truth."""
    points = torch.tensor(points_mm, dtype=torch.float64)
    truth = torch.tensor(truth_mm, dtype=torch.float64)
    aligned = alignment.apply(alignment.umeyama(points, truth), points)
    return float((aligned - truth).norm(dim=-1).mean())


@pytest.fixture(scope="module")
def session():
    sim = ArmbandSimulator(SimulatorConfig(seed=3))
    times = sim.camera_times(0.0, 20.0)  # 600 frames at 30 fps
    truth_mm = sim.hand_state(times)["joints"].astype(np.float64)
    landmarks_m, scores = sim.camera_landmarks(times)
    return truth_mm, landmarks_m, scores


@pytest.mark.parametrize("method", ["umeyama_scale", "umeyama_rigid", "kabsch"])
def test_alignment_recovers_a_known_transform(method):
    source = torch.randn(4, 21, 3, dtype=torch.float64) * 50
    rotation = rotation_about([0.3, -1.0, 0.5], 1.1).expand(4, 3, 3)
    scale = 1.0 if method != "umeyama_scale" else 0.8
    translation = torch.tensor([10.0, -4.0, 7.0], dtype=torch.float64)
    target = scale * source @ rotation.transpose(1, 2) + translation
    fit = alignment.align(source, target, method)
    torch.testing.assert_close(fit.rotation, rotation)
    torch.testing.assert_close(fit.scale, torch.full((4,), scale, dtype=torch.float64))
    torch.testing.assert_close(alignment.apply(fit, source), target)


def test_alignment_never_returns_a_reflection():
    source = torch.randn(8, 21, 3, dtype=torch.float64)
    mirrored = source * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    fit = alignment.umeyama(source, mirrored)
    determinant = torch.linalg.det(fit.rotation)
    torch.testing.assert_close(determinant, torch.ones(8, dtype=torch.float64))


def test_unknown_settings_fail_loudly():
    with pytest.raises(ValueError):
        IKConfig(alignment="procrustes")
    with pytest.raises(ValueError):
        IKConfig(optimizer="newton")


def test_batched_ik_recovers_noise_free_joints(session):
    truth_mm = session[0][:200]
    # noise-free landmarks: true joints in metres, centred like MediaPipe
    landmarks_m = (truth_mm - truth_mm.mean(1, keepdims=True)) / 1000.0
    config = IKConfig(sequence_iterations=300)
    fit = fit_sequence(landmarks_m, np.full(200, 0.9), config)
    error_mm = np.linalg.norm(fit.joints_mm - truth_mm, axis=-1).mean()
    print(f"noise-free: residual {fit.ik_error_mm.mean():.2f} mm, true {error_mm:.2f}")
    assert error_mm < 4.0
    assert fit.label_valid.all()


def test_batched_ik_is_closer_to_the_truth_than_the_landmarks(session):
    truth_mm, landmarks_m, scores = session
    fit = fit_sequence(landmarks_m, scores)
    detected = np.isfinite(landmarks_m).all((1, 2))
    raw_error = umeyama_error_mm(landmarks_m[detected] * 1000.0, truth_mm[detected])
    ik_error = umeyama_error_mm(fit.joints_mm[detected], truth_mm[detected])
    print(
        f"noisy: landmarks {raw_error:.2f} mm, IK {ik_error:.2f} mm, "
        f"residual {np.nanmean(fit.ik_error_mm):.2f} mm"
    )
    assert ik_error < 0.9 * raw_error


def test_failed_frames_are_invalid_and_never_zero_filled(session):
    truth_mm, landmarks_m, scores = session
    landmarks_m = landmarks_m[:120].copy()
    landmarks_m[40:43] = np.nan
    fit = fit_sequence(landmarks_m, scores[:120])
    assert not fit.label_valid[40:43].any()
    assert np.isnan(fit.ik_error_mm[40:43]).all()
    # the gap is carried by smoothness: a plausible hand, not zeros
    bone = np.linalg.norm(fit.joints_mm[41, 12] - fit.joints_mm[41, 11])
    assert 15.0 < bone < 25.0
    observed = np.isfinite(landmarks_m).all((1, 2))
    assert np.isfinite(fit.ik_error_mm[observed]).all()


def test_low_score_or_large_residual_frames_are_invalid(session):
    truth_mm, landmarks_m, scores = session
    scores = scores[:60].copy()
    scores[10] = 0.5
    landmarks_m = landmarks_m[:60].copy()
    landmarks_m[20] = np.random.default_rng(0).normal(0, 0.05, (21, 3))
    fit = fit_sequence(landmarks_m, scores)
    assert not fit.label_valid[10]
    assert not fit.label_valid[20] and fit.ik_error_mm[20] > 25.0


@pytest.mark.parametrize("optimizer", ["sgd", "lbfgs"])
def test_other_optimizers_run(session, optimizer):
    truth_mm, landmarks_m, scores = session
    config = IKConfig(optimizer=optimizer, sequence_iterations=20)
    fit = fit_sequence(landmarks_m[:30], scores[:30], config)
    assert np.isfinite(fit.joints_mm).all()


def test_streaming_residual_is_close_to_batched(session):
    truth_mm, landmarks_m, scores = session
    frames = 90
    streaming = StreamingIK(IKConfig())
    fits = [streaming.fit_frame(landmarks_m[f], scores[f]) for f in range(frames)]
    residual = np.nanmean([fit.residual_mm for fit in fits])
    batched = np.nanmean(
        fit_sequence(landmarks_m[:frames], scores[:frames]).ik_error_mm
    )
    print(f"streaming residual {residual:.2f} mm, batched {batched:.2f} mm")
    assert residual < 1.5 * batched
    assert fits[-1].pose.shape == (48,) and fits[-1].joints_mm.shape == (21, 3)


def test_streaming_holds_the_last_fit_through_a_missing_frame(session):
    truth_mm, landmarks_m, scores = session
    streaming = StreamingIK(IKConfig())
    first = streaming.fit_frame(landmarks_m[0], scores[0])
    missing = streaming.fit_frame(np.full((21, 3), np.nan), 0.1)
    assert not missing.valid and math.isnan(missing.residual_mm)
    np.testing.assert_array_equal(missing.joints_mm, first.joints_mm)


def test_closed_form_gradient_matches_autograd():
    from labeling.analytic_ik import ChainHand
    from labeling.hand_model import HandModel

    torch.manual_seed(0)
    model = HandModel(dtype=torch.float64)
    hand = ChainHand(model)
    pose = torch.randn(7, 45, dtype=torch.float64) * 0.6
    pose[0] = 0.0
    pose[1, :9] = 1e-4  # near the identity
    pose.requires_grad_(True)
    joints = model.joints(torch.nn.functional.pad(pose, (3, 0)))  # (7, 21, 3)
    weights = torch.randn(7, 21, 3, dtype=torch.float64)
    (joints * weights).sum().backward()
    finger = pose.detach().reshape(7, 15, 3)[:, hand.slots]  # (7, 15 finger order, 3)
    finger = finger.permute(2, 1, 0).reshape(3, 5, 3, 7)
    points, terms = hand.forward(finger)
    torch.testing.assert_close(analytic_ik.to_joints(points), joints.detach())
    gradient = hand.gradient(finger, points, terms, analytic_ik.to_points(weights))
    torch.testing.assert_close(hand.to_mano(gradient), pose.grad)


@pytest.mark.parametrize("is_right", [True, False])
def test_closed_form_fit_matches_the_autograd_fit(session, is_right):
    from labeling.hand_model import HandModel

    truth_mm, landmarks_m, scores = session
    landmarks_m = landmarks_m[:80].copy()
    if not is_right:
        landmarks_m[..., 0] *= -1.0
    model = HandModel(is_right=is_right, dtype=torch.float64)
    config = IKConfig(sequence_iterations=30)
    fast = ik._fit_all_frames_analytic(landmarks_m, config, model)
    slow = ik._fit_all_frames_autograd(landmarks_m, config, model)
    for fast_part, slow_part in zip(fast, slow, strict=True):
        torch.testing.assert_close(
            fast_part, slow_part, equal_nan=True, rtol=1e-5, atol=1e-5
        )


@pytest.mark.parametrize("is_right", [True, False])
def test_numpy_streaming_matches_the_torch_path(session, is_right):
    from labeling.hand_model import HandModel

    truth_mm, landmarks_m, scores = session
    landmarks_m = landmarks_m[:40].copy()
    if not is_right:
        landmarks_m[..., 0] *= -1.0
    fast = StreamingIK(IKConfig(), HandModel(is_right=is_right))
    slow = StreamingIK(IKConfig(), HandModel(is_right=is_right))
    slow._hand = None  # the torch linearised path
    for frame in range(40):
        expected = slow.fit_frame(landmarks_m[frame], scores[frame])
        got = fast.fit_frame(landmarks_m[frame], scores[frame])
        np.testing.assert_allclose(got.joints_mm, expected.joints_mm, atol=0.05)
        np.testing.assert_allclose(got.pose, expected.pose, atol=1e-3)
        np.testing.assert_allclose(got.residual_mm, expected.residual_mm, atol=0.02)
        assert got.valid == expected.valid
        assert got.pose.dtype == np.float32 and got.joints_mm.dtype == np.float32


def test_closed_form_jacobian_matches_finite_differences():
    from labeling import linearized_ik
    from labeling.hand_model import HandModel

    pose = np.random.default_rng(0).normal(0.0, 0.5, 45)
    for is_right in (True, False):
        model = HandModel(is_right=is_right, dtype=torch.float64)
        joints, jacobian = linearized_ik.NumpyHand(model).joints_and_jacobian(pose)
        expected = linearized_ik.joints_and_jacobian(model, pose)
        np.testing.assert_allclose(joints, expected[0], atol=1e-9)
        np.testing.assert_allclose(jacobian, expected[1], atol=1e-3)
