"""The tcn's streaming step and heads in plain numpy, built once from its weights.

Why numpy: a live update computes one or two 20 ms frames, so every tensor is
tiny (a 17 × 8 chunk, 64-wide features) and the work is ~150 small torch ops, a
few hundred thousand multiply-adds in all. Each torch op costs a few µs of Python,
dispatch and allocation whatever its size, so the model's part of an update took
~0.5 ms even traced and frozen with TorchScript. A numpy call costs ~1 µs, and
building the step from the weights merges ops: the filter bank is one matmul over
the stacked filter taps (im2col), BatchNorm (eval mode: a fixed affine) and the
frame mean fold into the 1x1 projection, each block's dilated conv is one matmul
over its stacked taps, the two heads are one matmul, and the hand's forward
kinematics builds its rotations with one matmul and skips the MANO axis-angle
round trip. About 70 numpy calls per update, ~0.1 ms.

The weights are read once: a `NumpyTcn` is a frozen copy of the model in eval
mode (dropout off, BatchNorm's running statistics).

Everything runs in float64: no slower at these sizes, and it keeps the result
within float32 round-off of the torch model (which is what the streaming-equals-
offline tests compare against).

`NumpyTcn.stream_features` mirrors `Tcn.stream_features` (the same state layout,
time-major): fed a stream frame by frame it gives `Tcn.frame_features` on the
whole stream, and `joints` gives `Tcn.heads(...)["joints"]`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from labeling import kinematics as kin
from training.models.hand import NUM_JOINTS
from training.models.tcn import POWER_FLOOR, Tcn

DTYPE = np.float64
FINGER_SLOTS = np.array([kin._MANO_SLOTS[finger] for finger in kin.FINGERS])  # (5, 3)
SQRT_HALF = math.sqrt(0.5)
CACHED_FRAMES = 8  # the im2col index is kept for updates of up to this many frames

# Per update, `np.dot` rather than `@` for 2-D products: ~0.4 µs less per call at
# these sizes. Stacked 3x3 products stay `np.matmul`. Both want one BLAS thread
# (`LivePredictor.from_checkpoint` sets that): a one-frame update's 1-row conv
# product is big enough for OpenBLAS to thread it otherwise.


def scaled_gelu(scaled: np.ndarray) -> np.ndarray:
    """sqrt(2) * GELU(x) for scaled = x / sqrt(2), i.e. scaled * (1 + erf(scaled)).

    torch's default GELU is the exact (erf) form: 0.5 x (1 + erf(x / sqrt(2))).
    The 1 / sqrt(2) is folded into the weights before and the sqrt(0.5) into the
    weights after, leaving 3 numpy calls instead of 5 (each ~1 µs at this size)."""
    result = erf(scaled)
    result += 1.0
    result *= scaled
    return result


def _array(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(DTYPE)


def _taps_matrix(conv_weight: np.ndarray) -> np.ndarray:
    """(out, in, kernel) conv weight -> (kernel * in, out): the matmul weight for
    inputs laid out as [tap 0's `in` values, tap 1's, ...] per row."""
    out_channels = conv_weight.shape[0]
    return conv_weight.transpose(2, 1, 0).reshape(-1, out_channels)


def _rotation_terms(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rodrigues about unit `axis`: R(θ) = (I + K²) + sin(θ) K - cos(θ) K², with K
    its cross-product matrix. Returns (I + K², K, -K²), each (3, 3)."""
    x, y, z = axis
    skew = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    skew_squared = skew @ skew
    return np.eye(3) + skew_squared, skew, -skew_squared


class NumpyKinematics:
    """`HandKinematics` joints in numpy: 20 angles (m, 20) rad -> (m, 21, 3) mm.

    Each MANO finger joint turns by R_abduction @ R_flexion (only the 5 base
    joints have an abduction). The torch module composes them as quaternions and
    goes through a MANO axis-angle pose (to be differentiable and to output the
    pose), then turns the pose back into these same rotations; here they are
    built directly and chained per finger.

    Every rotation's entries are linear in the sines and cosines of the angles
    (Rodrigues about a fixed axis), so all 20 rotations come from one matmul:
    [sin(angles), cos(angles)] (m, 40) @ a (40, 20 * 9) table, plus a constant."""

    def __init__(self) -> None:
        # finger-major: 5 fingers × (3 flexions, then the base's abduction)
        axes = np.concatenate(
            [kin.FLEXION_AXES[FINGER_SLOTS], kin.ABDUCTION_AXES[FINGER_SLOTS[:, :1]]],
            axis=1,
        )  # (5, 4, 3)
        sources = np.concatenate(
            [
                kin._FLEXION_SOURCE[FINGER_SLOTS],
                kin._ABDUCTION_SOURCE[FINGER_SLOTS[:, :1]],
            ],
            axis=1,
        )  # (5, 4): which of the 20 angles turns each
        assert (sources >= 0).all(), "every base joint has an abduction"
        num_angles = len(kin.ANGLE_NAMES)
        self.rotation_table = np.zeros((2 * num_angles, 5, 4, 3, 3), DTYPE)
        self.rotation_constant = np.zeros((5, 4, 3, 3), DTYPE)
        for finger in range(5):
            for joint in range(4):
                constant, sine, cosine = _rotation_terms(axes[finger, joint])
                source = sources[finger, joint]
                self.rotation_table[source, finger, joint] = sine
                self.rotation_table[num_angles + source, finger, joint] = cosine
                self.rotation_constant[finger, joint] = constant
        self.rotation_table = self.rotation_table.reshape(2 * num_angles, -1)
        rest_mm = kin.rest_joints_mm()[1:].reshape(5, 4, 3)
        self.base_mm = rest_mm[:, 0]  # (5, 3) finger bases; the wrist does not turn
        self.segments_mm = np.diff(rest_mm, axis=1)[..., None]  # (5, 3, 3, 1)

    def rotations(self, angles_rad: np.ndarray) -> np.ndarray:
        """(m, 20) rad -> (m, 5, 4, 3, 3): per finger, its 3 joints' flexions and
        its base's abduction."""
        trig = np.concatenate([np.sin(angles_rad), np.cos(angles_rad)], axis=1)
        rotations = np.dot(trig, self.rotation_table)
        rotations = rotations.reshape(len(angles_rad), 5, 4, 3, 3)
        rotations += self.rotation_constant
        return rotations

    def joints_mm(self, angles_rad: np.ndarray) -> np.ndarray:
        rotations = self.rotations(angles_rad)
        batch = len(angles_rad)
        # each bone's rotation: its parents' and its own, base abduction first
        chains = np.empty((batch, 5, 3, 3, 3), DTYPE)
        np.matmul(rotations[:, :, 3], rotations[:, :, 0], out=chains[:, :, 0])
        np.matmul(chains[:, :, 0], rotations[:, :, 1], out=chains[:, :, 1])
        np.matmul(chains[:, :, 1], rotations[:, :, 2], out=chains[:, :, 2])
        # each finger's bones: base (from the wrist, unturned), then 3 segments
        bones_mm = np.empty((batch, 5, 4, 3), DTYPE)
        bones_mm[:, :, 0] = self.base_mm
        np.matmul(chains, self.segments_mm, out=bones_mm[:, :, 1:, :, None])
        joints_mm = np.zeros((batch, NUM_JOINTS, 3), DTYPE)  # the wrist at 0
        joints_mm[:, 1:] = np.cumsum(bones_mm, axis=2).reshape(batch, 20, 3)
        return joints_mm


class _Block:
    """A `TemporalBlock` at one dilation, time-major: features (k, H)."""

    def __init__(self, block, dilation: int) -> None:
        self.kernel = block.conv.kernel_size[0]
        self.dilation = dilation
        self.reach = dilation * (self.kernel - 1)
        # scaled by 1 / sqrt(2) and sqrt(0.5) for `scaled_gelu`
        conv_weight = _taps_matrix(_array(block.conv.weight))  # (kernel * H, H)
        self.conv_weight = conv_weight * SQRT_HALF
        self.conv_bias = _array(block.conv.bias) * SQRT_HALF
        self.mix_weight = _array(block.mix.weight)[:, :, 0].T * SQRT_HALF  # (H, H)
        self.mix_bias = _array(block.mix.bias)

    def step(self, features: np.ndarray, past: np.ndarray):
        """New frames (k, H) and the `reach` input frames before them -> (output
        (k, H), the next `past`). The cache is a plain array re-sliced each step:
        at most 16 × 64 values, as cheap to copy as a ring is to index."""
        frames = len(features)
        extended = np.concatenate([past, features])  # (reach + k, H)
        taps = np.concatenate(
            [extended[tap * self.dilation : tap * self.dilation + frames]
             for tap in range(self.kernel)], axis=1,
        )  # (k, kernel * H)  # fmt: skip
        conv = np.dot(taps, self.conv_weight)
        conv += self.conv_bias
        output = np.dot(scaled_gelu(conv), self.mix_weight)
        output += self.mix_bias
        output += features  # the residual
        return output, extended[len(extended) - self.reach :]


class NumpyTcn:
    """A tcn (eval mode) as numpy arrays: the streaming step and the joints head."""

    def __init__(self, model: Tcn) -> None:
        config = model.config
        self.hidden = config.hidden
        self.frame_samples = config.frame_samples
        self.filter_samples = config.filter_samples
        front = model.front_end
        bank = _array(front.filter_bank.weight)  # (F, C, L)
        # rows laid out as `_windows` gives them: [tap][channel]
        self.filter_weight = bank.transpose(2, 1, 0).reshape(-1, bank.shape[0])
        self._window_index = np.zeros((0, self.filter_samples), np.intp)
        # BatchNorm in eval mode is an affine map and the 1x1 projection after it
        # is linear: both fold into one matmul on the log-power. The frame mean is
        # a sum here: log(sum / n + floor) = log(sum + n floor) - log(n), and the
        # -log(n) folds into the bias too.
        norm = front.norm
        scale = _array(norm.weight) / np.sqrt(_array(norm.running_var) + norm.eps)
        shift = _array(norm.bias) - _array(norm.running_mean) * scale
        project = _array(front.project.weight)[:, :, 0].T  # (F, H)
        self.envelope_weight = scale[:, None] * project
        self.envelope_bias = (
            shift - math.log(self.frame_samples) * scale
        ) @ project + _array(front.project.bias)
        self.power_sum_floor = POWER_FLOOR * self.frame_samples
        self.blocks = [
            _Block(block, dilation)
            for block, dilation in zip(model.blocks, config.dilations, strict=True)
        ]
        # the two heads read the same GELU'd features: one matmul for both
        heads_weight = np.concatenate(
            [_array(model.angles_head.weight), _array(model.correction_head.weight)]
        ).T  # (H, 20 + 60)
        self.heads_weight = heads_weight * SQRT_HALF  # for `scaled_gelu`
        self.heads_bias = np.concatenate(
            [_array(model.angles_head.bias), _array(model.correction_head.bias)]
        )
        self.num_angles = model.angles_head.out_features
        self.kinematics = NumpyKinematics()

    def initial_stream_state(self) -> list[np.ndarray]:
        """Per-block past frames (reach, H) at a stream's start: zeros, the causal
        padding of the offline model."""
        return [np.zeros((block.reach, self.hidden), DTYPE) for block in self.blocks]

    def _windows(self, emg: np.ndarray) -> np.ndarray:
        """(T, C) -> (T - L + 1, L * C): each filter position's L samples (im2col),
        through a cached index (a fancy index is ~5x cheaper than
        sliding_window_view's checks at this size)."""
        positions = len(emg) - self.filter_samples + 1
        index = self._window_index
        if positions > len(index):
            index = np.arange(positions)[:, None] + np.arange(self.filter_samples)
            if positions <= CACHED_FRAMES * self.frame_samples:  # not a backlog's
                self._window_index = index
        windows = np.take(emg, index[:positions], axis=0)
        return windows.reshape(positions, -1)

    def envelopes(self, emg: np.ndarray) -> np.ndarray:
        """(T, C) normalized EMG, T = filter_samples - 1 + k * frame_samples ->
        (k, H) projected log-power envelopes of its k frames."""
        filtered = np.dot(self._windows(emg), self.filter_weight)  # (k * n, F)
        np.square(filtered, out=filtered)
        frames = len(filtered) // self.frame_samples
        power_sum = np.add.reduce(filtered.reshape(frames, self.frame_samples, -1), 1)
        power_sum += self.power_sum_floor
        envelopes = np.dot(np.log(power_sum, out=power_sum), self.envelope_weight)
        envelopes += self.envelope_bias
        return envelopes

    def stream_features(
        self, emg: np.ndarray, state: list[np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """As `Tcn.stream_features` for one stream, time-major: (T, C) EMG holding
        k new frames and the per-block state -> (features (k, H), next state)."""
        features = self.envelopes(np.asarray(emg, DTYPE))
        next_state = []
        for block, past in zip(self.blocks, state, strict=True):
            features, past = block.step(features, past)
            next_state.append(past)
        return features, next_state

    def joints(self, features: np.ndarray) -> np.ndarray:
        """(m, H) frame features -> (m, 21, 3) mm, as `Tcn.heads`' joints."""
        outputs = np.dot(scaled_gelu(features * SQRT_HALF), self.heads_weight)
        outputs += self.heads_bias
        angles_rad = outputs[:, : self.num_angles]
        correction_mm = outputs[:, self.num_angles :].reshape(len(outputs), -1, 3)
        joints_mm = self.kinematics.joints_mm(angles_rad)
        joints_mm[:, 1:] += correction_mm  # the wrist stays at the origin
        return joints_mm
