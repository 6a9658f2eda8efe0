"""Inverse kinematics: MediaPipe world landmarks -> MANO pose pseudo-labels.

The seed's Eq. (1), per frame t:
    L = λ_pos ||J_model - Align(J_MP)||² + λ_dir Σ_bones (1 - cos(v_model, v_MP))
      + λ_smooth ||θ_t - θ_(t-1)||² + λ_reg ||θ_t||² + λ_limit limit_penalty(θ_t)
- The landmarks are aligned onto the model joints by a similarity (Umeyama with
  scale) or rigid transform, re-estimated (without gradient) as the fit moves.
  The alignment absorbs the hand's orientation, so the fit optimises the 45 finger
  parameters; the output global orient is the inverse of the alignment's rotation
  (the hand's orientation in the landmark frame), and joints = model.joints(pose).
- L_pos is measured in units of `position_unit_mm` (metres by default, as MediaPipe
  reports); θ is in radians; the smoothness, regularisation and limit terms apply
  to the 45 finger parameters.

Two modes share the loss: `StreamingIK` (live, one frame at a time, warm-started
from the previous frame with a fixed iteration budget) and `fit_sequence` (a whole
session at once, vectorised over frames, smoothness across the sequence).
For the built-in hand both run without autograd: the batched Adam takes the loss's
gradient in closed form (`ChainHand`, frames-last tensors), and streaming runs in
float64 numpy (`linearized_ik`); other models (MANO) and L-BFGS use autograd.
A frame whose landmarks hold NaN (failed detection) never enters the data term; its
ik_error_mm is NaN and label_valid False. Nothing is zero-filled.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import torch

from labeling import linearized_ik
from labeling.alignment import ALIGNMENTS, align, apply
from labeling.analytic_ik import (
    ChainHand,
    limit_tables,
    point_gradient,
    to_joints,
    to_points,
)
from labeling.hand_model import (
    MIRROR_AXIS_ANGLE,
    HandModel,
    matrix_to_axis_angle,
)

OPTIMIZERS = ("adam", "sgd", "lbfgs")
# Parent of each MediaPipe joint 1..20 (the bones' start joints).
BONE_PARENTS = [0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19]


@dataclass
class IKConfig:
    position_weight: float = 1.0  # λ_pos (seed)
    direction_weight: float = 0.5  # λ_dir (seed)
    smoothness_weight: float = 0.1  # λ_smooth (seed)
    regularization_weight: float = 0.01  # λ_reg (seed)
    joint_limit_weight: float = 1.0  # soft anatomical limits, per rad² of excess
    position_unit_mm: float = 1000.0  # L_pos in metres², as MediaPipe reports
    alignment: str = "umeyama_scale"  # | "umeyama_rigid" | "kabsch"
    optimizer: str = "adam"  # | "sgd" | "lbfgs"
    learning_rate: float = 0.01  # streaming (seed: Adam, lr 0.01)
    iterations: int = 15  # streaming, per frame (seed)
    cold_start_iterations: int = 150  # streaming: first frame, or after a lost track
    sequence_learning_rate: float = 0.08  # batched: starts from the flat hand
    sequence_iterations: int = 60
    realign_every: int = 5  # iterations between alignment updates
    min_score: float = 0.7  # label_valid needs detection score above this (seed)
    max_residual_mm: float = 25.0  # ... and an IK residual below this (seed)
    # batched mode; None: one thread for the built-in hand (its closed-form fit is
    # short elementwise ops that gain ~10% from a second core and stall badly when
    # OpenMP threads compete for busy cores), all cores for other models (autograd)
    num_threads: int | None = None
    streaming_linearized: bool = True  # streaming steps on a per-frame linearisation
    # fit the person's bone lengths before the poses (built-in hand; bone_lengths)
    fit_bone_lengths: bool = True

    def __post_init__(self) -> None:
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}")

    def as_dict(self) -> dict:
        return asdict(self)


class FrameFit(NamedTuple):
    pose: np.ndarray  # (48,) float32 rad
    joints_mm: np.ndarray  # (21, 3) float32 mm
    residual_mm: float  # NaN when the landmarks are missing
    valid: bool


class SequenceFit(NamedTuple):
    pose: np.ndarray  # (T, 48) float32 rad
    joints_mm: np.ndarray  # (T, 21, 3) float32 mm
    ik_error_mm: np.ndarray  # (T,) float32 residual to the aligned landmarks; NaN
    label_valid: np.ndarray  # (T,) bool


class _Targets:
    """Landmarks (B, 21, 3) mm aligned onto the current model joints, and their unit
    bone directions; `observed` (B,) is 1 where the frame has landmarks."""

    def __init__(self, landmarks_mm: torch.Tensor, observed: torch.Tensor):
        self.landmarks_mm = landmarks_mm
        self.observed = observed
        self.aligned_mm = landmarks_mm.clone()
        self.bone_directions = landmarks_mm[:, 1:].clone()
        self.transform = None

    @torch.no_grad()
    def realign(self, joints_mm: torch.Tensor, method: str) -> None:
        self.transform = align(self.landmarks_mm, joints_mm, method)
        self.aligned_mm = apply(self.transform, self.landmarks_mm)
        self.bone_directions = _unit(bone_vectors(self.aligned_mm))


def bone_vectors(joints: torch.Tensor) -> torch.Tensor:
    """(B, 21, 3) joints -> (B, 20, 3) parent-to-child bone vectors."""
    return joints[:, 1:] - joints[:, BONE_PARENTS]


def _unit(vectors: torch.Tensor) -> torch.Tensor:
    return vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def _full_pose(finger_pose: torch.Tensor) -> torch.Tensor:
    """(B, 45) finger pose -> (B, 48) with a zero global orient."""
    return torch.nn.functional.pad(finger_pose, (3, 0))


def _frame_losses(
    finger_pose: torch.Tensor, joints_mm: torch.Tensor, targets: _Targets, config
) -> torch.Tensor:
    """Summed data, regularisation and limit terms over the frames (a scalar)."""
    position_error = (joints_mm - targets.aligned_mm) / config.position_unit_mm
    position = position_error.square().sum((1, 2))  # (B,)
    cosine = (_unit(bone_vectors(joints_mm)) * targets.bone_directions).sum(-1)
    direction = (1.0 - cosine).sum(1)  # (B,)
    data = config.position_weight * position + config.direction_weight * direction
    regularization = finger_pose.square().sum(1)
    return (
        targets.observed * data
    ).sum() + config.regularization_weight * regularization.sum()


def _make_optimizer(parameter: torch.Tensor, config: IKConfig, lr: float, steps: int):
    if config.optimizer == "adam":
        return torch.optim.Adam([parameter], lr=lr)
    if config.optimizer == "sgd":
        return torch.optim.SGD([parameter], lr=lr, momentum=0.9)
    return torch.optim.LBFGS(
        [parameter], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe"
    )


def _limit_loss(model, finger_pose: torch.Tensor, config: IKConfig) -> torch.Tensor:
    if config.joint_limit_weight == 0:
        return finger_pose.new_zeros(())
    penalty = model.joint_limit_penalty(_full_pose(finger_pose))
    return config.joint_limit_weight * penalty.sum()


def _optimize(finger_pose, optimizer, loss_fn, steps: int, config: IKConfig) -> None:
    """Run `steps` optimizer steps of `loss_fn(step) -> scalar` on finger_pose."""
    if config.optimizer == "lbfgs":
        counter = iter(range(10**9))

        def closure():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(next(counter))
            loss.backward()
            return loss

        optimizer.step(closure)
        return
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(step).backward()
        optimizer.step()


def _finish(model, finger_pose, targets: _Targets, config: IKConfig):
    """Final alignment -> pose (B, 48) with global orient, joints (B, 21, 3) mm and
    residual (B,) mm (NaN where unobserved)."""
    with torch.no_grad():
        hand_frame_joints = model.joints(_full_pose(finger_pose))
        targets.realign(hand_frame_joints, config.alignment)
        distance = (hand_frame_joints - targets.aligned_mm).norm(dim=-1)  # (B, 21)
        residual_mm = distance.mean(1)
        residual_mm[targets.observed == 0] = float("nan")
        # the alignment maps landmarks into the hand frame; its inverse orients
        orient = matrix_to_axis_angle(targets.transform.rotation.transpose(1, 2))
        orient[targets.observed == 0] = 0.0
        pose = torch.cat([orient, finger_pose], 1)
        return pose, model.joints(pose), residual_mm


def _label_valid(residual_mm: np.ndarray, scores: np.ndarray, config) -> np.ndarray:
    finite = np.isfinite(residual_mm)
    residual_ok = np.where(finite, residual_mm, np.inf) < config.max_residual_mm
    return finite & residual_ok & (np.asarray(scores) > config.min_score)


def _prepare_landmarks(landmarks_m, model, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, 21, 3) metres with NaN frames -> mm tensor with unobserved frames set to
    the rest joints (placeholders that the loss masks out), and observed (T,)."""
    landmarks_mm = torch.as_tensor(np.asarray(landmarks_m), dtype=dtype) * 1000.0
    observed = torch.isfinite(landmarks_mm).all(-1).all(-1)  # (T,)
    rest = model.rest_joints_mm.detach().to(dtype)
    landmarks_mm[~observed] = rest
    return landmarks_mm, observed.to(dtype)


def fit_sequence(
    landmarks_m: np.ndarray,
    scores: np.ndarray,
    config: IKConfig | None = None,
    model: HandModel | None = None,
) -> SequenceFit:
    """Fit a whole session at once: landmarks (T, 21, 3) metres (NaN where detection
    failed) and scores (T,) -> SequenceFit. All frames are optimised together, with
    smoothness between consecutive frames (which also carries unobserved frames)."""
    config = config or IKConfig()
    model = model or HandModel()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(batched_threads(config, model))
    try:
        pose, joints_mm, residual_mm = _fit_all_frames(landmarks_m, config, model)
    finally:
        torch.set_num_threads(previous_threads)
    return SequenceFit(
        pose=pose.numpy().astype(np.float32),
        joints_mm=joints_mm.numpy().astype(np.float32),
        ik_error_mm=residual_mm.numpy().astype(np.float32),
        label_valid=_label_valid(residual_mm.numpy(), scores, config),
    )


def _closed_form(config: IKConfig, model) -> bool:
    """Whether the batched fit takes the closed-form gradient path."""
    return isinstance(model, HandModel) and config.optimizer != "lbfgs"


def batched_threads(config: IKConfig, model) -> int:
    """Threads `fit_sequence` uses for this config and model (IKConfig.num_threads)."""
    if config.num_threads:
        return config.num_threads
    return 1 if _closed_form(config, model) else os.cpu_count() or 1


def _fit_all_frames(landmarks_m, config: IKConfig, model):
    if _closed_form(config, model):
        return _fit_all_frames_analytic(landmarks_m, config, model)
    return _fit_all_frames_autograd(landmarks_m, config, model)


def _fit_all_frames_autograd(landmarks_m, config: IKConfig, model):
    dtype = model.rest_joints_mm.dtype
    landmarks_mm, observed = _prepare_landmarks(landmarks_m, model, dtype)
    targets = _Targets(landmarks_mm, observed)
    finger_pose = torch.zeros(len(landmarks_mm), 45, dtype=dtype, requires_grad=True)
    steps = config.sequence_iterations
    optimizer = _make_optimizer(
        finger_pose, config, config.sequence_learning_rate, steps
    )

    def loss_fn(step: int) -> torch.Tensor:
        joints_mm = model.joints(_full_pose(finger_pose))
        if step % config.realign_every == 0:
            targets.realign(joints_mm, config.alignment)
        jerk = (finger_pose[1:] - finger_pose[:-1]).square().sum()
        return (
            _frame_losses(finger_pose, joints_mm, targets, config)
            + config.smoothness_weight * jerk
            + _limit_loss(model, finger_pose, config)
        )

    _optimize(finger_pose, optimizer, loss_fn, steps, config)
    return _finish(model, finger_pose.detach(), targets, config)


def _fit_all_frames_analytic(landmarks_m, config: IKConfig, model: HandModel):
    """`_fit_all_frames` for the built-in hand with Adam or SGD: the same loss and
    optimizer, with the gradient in closed form (`ChainHand`) instead of autograd.
    A left hand is fitted as the mirrored right hand, then mirrored back."""
    dtype = model.rest_joints_mm.dtype
    landmarks_mm, observed = _prepare_landmarks(landmarks_m, model, dtype)
    targets = _Targets(landmarks_mm, observed)
    mirror = landmarks_mm.new_tensor([1.0 if model.is_right else -1.0, 1.0, 1.0])
    right_targets = _Targets(landmarks_mm * mirror, observed)
    hand = ChainHand(model)
    frames = len(landmarks_mm)
    finger = torch.zeros(3, 5, 3, frames, dtype=dtype, requires_grad=True)
    steps = config.sequence_iterations
    optimizer = _make_optimizer(finger, config, config.sequence_learning_rate, steps)
    smoothness = 2.0 * config.smoothness_weight
    regularization = 2.0 * config.regularization_weight
    for step in range(steps):
        pose = finger.detach()
        points, terms = hand.forward(pose)
        if step % config.realign_every == 0:
            right_targets.realign(to_joints(points), config.alignment)
            aligned = to_points(right_targets.aligned_mm)
            directions = to_points(right_targets.bone_directions, bones=True)
        gradient_at_points = point_gradient(
            points, aligned, directions, observed, config
        )
        gradient = hand.gradient(pose, points, terms, gradient_at_points)
        gradient += regularization * pose
        step_difference = smoothness * (pose[..., 1:] - pose[..., :-1])
        gradient[..., 1:] += step_difference
        gradient[..., :-1] -= step_difference
        if config.joint_limit_weight:
            gradient += config.joint_limit_weight * hand.limit_gradient(pose)
        finger.grad = gradient
        optimizer.step()
    finger_pose = hand.to_mano(finger.detach())
    if not model.is_right:
        finger_pose = finger_pose * finger_pose.new_tensor(MIRROR_AXIS_ANGLE).repeat(15)
    return _finish(model, finger_pose, targets, config)


class StreamingIK:
    """Live IK, one frame at a time: each fit starts from the previous frame's pose
    and runs `config.iterations` steps (`cold_start_iterations` for the first frame
    and after a lost track). Adam's moments carry across frames."""

    def __init__(self, config: IKConfig | None = None, hand_model=None):
        self.config = config or IKConfig()
        self.model = hand_model or HandModel()
        dtype = self.model.rest_joints_mm.dtype
        self._finger_pose = torch.zeros(1, 45, dtype=dtype, requires_grad=True)
        self._tracking = False
        self._last = None  # the last FrameFit, held through missing frames
        self._model64 = copy.deepcopy(self.model).double()
        self._limits, self._mirror = limit_tables(self.model)
        self._limit_terms = linearized_ik.limit_matrix((self._limits, self._mirror))
        # the built-in hand's tracking steps run in numpy (torch's per-call overhead
        # dominates at one frame); other models take the torch path
        self._hand = None
        self._linear_cache = None  # (state key, finger pose, joints, Jacobian)
        if isinstance(self.model, HandModel):
            self._hand = linearized_ik.NumpyHand(self.model)
        self.reset()

    def reset(self) -> None:
        """Forget the track: the next frame starts cold from the flat hand."""
        with torch.no_grad():
            self._finger_pose.zero_()
        self._tracking = False
        self._adam_state = {"step": 0, "m": np.zeros(45), "v": np.zeros(45)}
        self._new_optimizer(self.config.cold_start_iterations)

    def _new_optimizer(self, steps: int) -> None:
        rate = self.config.sequence_learning_rate
        if self._tracking:
            rate = self.config.learning_rate
        self._optimizer = _make_optimizer(self._finger_pose, self.config, rate, steps)

    def fit_frame(self, landmarks_m: np.ndarray, score: float) -> FrameFit:
        """Landmarks (21, 3) metres (NaN if detection failed), detection score ->
        FrameFit. A missing frame returns the last fit (or the flat hand), invalid."""
        config = self.config
        numpy_path = self._hand is not None and config.streaming_linearized
        if numpy_path and (self._tracking or config.optimizer == "adam"):
            landmarks_mm = np.asarray(landmarks_m, dtype=np.float64).reshape(21, 3)
            if not np.isfinite(landmarks_mm).all():
                return self._missing_frame()
            landmarks_mm = landmarks_mm * 1000.0
            if not self._tracking:  # cold start, as `_fit` runs it
                fitted = linearized_ik.cold_start(
                    self._hand, landmarks_mm, self._limit_terms, config
                )
                with torch.no_grad():
                    self._finger_pose.copy_(torch.from_numpy(fitted).unsqueeze(0))
                self._tracking = True
                self._new_optimizer(config.iterations)
                self._last = self._finish_numpy(fitted, landmarks_mm, score)
                return self._last
            self._last = self._fit_linearized_numpy(landmarks_mm, score)
            return self._last
        dtype = self._finger_pose.dtype
        landmarks_mm = torch.as_tensor(np.asarray(landmarks_m), dtype=dtype) * 1000.0
        if not torch.isfinite(landmarks_mm).all():
            return self._missing_frame()
        targets = _Targets(landmarks_mm.reshape(1, 21, 3), torch.ones(1, dtype=dtype))
        if self._tracking and self.config.streaming_linearized:
            pose, joints_mm, residual_mm = self._fit_linearized(targets)
        else:
            steps = self.config.iterations if self._tracking else None
            pose, joints_mm, residual_mm = self._fit(targets, steps)
        residual = float(residual_mm[0])
        valid = bool(_label_valid(np.array([residual]), np.array([score]), self.config))
        self._last = FrameFit(pose[0].numpy(), joints_mm[0].numpy(), residual, valid)
        return self._last

    def _fit(self, targets: _Targets, steps: int | None):
        config, model, finger_pose = self.config, self.model, self._finger_pose
        if steps is None:  # cold start: a longer run at the batched rate
            steps = config.cold_start_iterations
        previous = finger_pose.detach().clone()

        def loss_fn(step: int) -> torch.Tensor:
            joints_mm = model.joints(_full_pose(finger_pose))
            if step % config.realign_every == 0:
                targets.realign(joints_mm, config.alignment)
            jerk = (finger_pose - previous).square().sum() if self._tracking else 0.0
            return (
                _frame_losses(finger_pose, joints_mm, targets, config)
                + config.smoothness_weight * jerk
                + _limit_loss(model, finger_pose, config)
            )

        _optimize(finger_pose, self._optimizer, loss_fn, steps, config)
        if not self._tracking:
            self._tracking = True
            self._new_optimizer(config.iterations)
        return _finish(model, finger_pose.detach(), targets, config)

    def _fit_linearized(self, targets: _Targets):
        """`config.iterations` Adam steps on the model linearised at the warm start,
        landmarks aligned once onto the warm start's joints."""
        finger_pose = self._finger_pose
        start = finger_pose.detach()[0].double().numpy()
        linear = linearized_ik.joints_and_jacobian(self._model64, start)
        start_joints = torch.as_tensor(linear[0], dtype=finger_pose.dtype)
        targets.realign(start_joints.unsqueeze(0), self.config.alignment)
        aligned = targets.aligned_mm[0].double().numpy()
        directions = targets.bone_directions[0].double().numpy()
        fitted = linearized_ik.adam_steps(
            start,
            start,
            linear,
            (aligned, directions),
            (self._limits, self._mirror),
            self.config,
            self._adam_state,
        )
        with torch.no_grad():
            finger_pose.copy_(torch.as_tensor(fitted).unsqueeze(0))
        return _finish(self.model, finger_pose.detach(), targets, self.config)

    def _fit_linearized_numpy(self, landmarks_mm: np.ndarray, score) -> FrameFit:
        """`_fit_linearized` and `_finish` for the built-in hand, in float64 numpy."""
        config, hand = self.config, self._hand
        current = self._finger_pose.detach()[0].numpy()
        cache = self._linear_cache
        if cache is not None and np.array_equal(cache[0], current):
            start, linear = cache[1], cache[2:]
        else:
            start = current.astype(np.float64)
            linear = hand.joints_and_jacobian(start)
        scale, rotation, shift = linearized_ik.align(
            landmarks_mm, linear[0], config.alignment
        )
        aligned = scale * landmarks_mm @ rotation.T + shift
        bones = aligned[1:] - aligned[BONE_PARENTS]
        length = np.sqrt((bones * bones).sum(1, keepdims=True))
        directions = bones / length.clip(1e-9)
        fitted = linearized_ik.adam_steps_precomputed(
            start,
            start,
            linear,
            (aligned, directions),
            self._limit_terms,
            config,
            self._adam_state,
        )
        with torch.no_grad():
            self._finger_pose.copy_(torch.from_numpy(fitted).unsqueeze(0))
        return self._finish_numpy(fitted, landmarks_mm, score)

    def _finish_numpy(self, fitted, landmarks_mm, score) -> FrameFit:
        """`_finish` in numpy: exact joints, final alignment, residual and global
        orient. The linearisation at the fitted pose is kept for the next frame's
        warm start (keyed by the pose as the torch state holds it)."""
        config, hand = self.config, self._hand
        joints_mm, jacobian = hand.joints_and_jacobian(fitted)
        key = self._finger_pose.detach()[0].numpy().copy()
        self._linear_cache = (key, fitted, joints_mm, jacobian)
        scale, rotation, shift = linearized_ik.align(
            landmarks_mm, joints_mm, config.alignment
        )
        aligned = scale * landmarks_mm @ rotation.T + shift
        distance = np.sqrt(((joints_mm - aligned) ** 2).sum(1))
        residual = float(distance.mean())
        orient = linearized_ik.matrix_to_axis_angle(rotation.T)
        pose = np.concatenate([orient, fitted]).astype(np.float32)
        # the global orient rotates the whole hand about the wrist
        world_mm = joints_mm @ linearized_ik.rodrigues(orient).T
        valid = bool(
            np.isfinite(residual)
            and residual < config.max_residual_mm
            and score > config.min_score
        )
        return FrameFit(pose, world_mm.astype(np.float32), residual, valid)

    def _missing_frame(self) -> FrameFit:
        if self._last is None:
            pose = np.zeros(48, np.float32)
            joints_mm = self.model.rest_joints_mm.detach().numpy()
            return FrameFit(pose, joints_mm.astype(np.float32), float("nan"), False)
        return self._last._replace(residual_mm=float("nan"), valid=False)
