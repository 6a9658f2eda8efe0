"""How each zoo model is run on a stream: the model-specific part of live inference.

A runner takes the stream as filtered, normalized chunks (`advance`) and says
where in the chunk a new model output can end (`output_ends`); `joints_at` then
computes the outputs the predictor picked.

- `WindowRunner` (v4, v5, vemg2pose, neuropose): these see a short fixed window
  (100 ms to ~1 s), so it keeps the last `window_samples` and recomputes the
  window for each output: an output can end at every sample (its native step is
  one sample). Their LSTMs restart at each window start, as in training, so there
  is no recurrent state to carry beyond the window.
- `TcnRunner` (tcn): streams frame by frame with per-layer caches
  (`Tcn.stream_features`): each update computes only the new 20 ms frames, and an
  output can end at each frame end (its native step is `frame_samples`). On CPU
  it runs the step and heads as `NumpyTcn` (`inference.tcn_numpy`: an update is
  ~150 tiny ops, which torch's per-op overhead makes ~5x slower); on a GPU, the
  model's own torch code.

Both give exactly the outputs of the model run on the window of the whole
filtered, normalized signal ending at the same sample.
"""

from __future__ import annotations

import numpy as np
import torch

from inference.tcn_numpy import NumpyTcn
from training.models.tcn import Tcn


class WindowRunner:
    """Recomputes the model's window for each output it is asked for."""

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.model = model
        self.device = device
        self.window_samples = model.config.window_samples
        self.step_samples = 1
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the window fills again from the next sample."""
        num_channels = self.model.config.num_channels
        self._recent = np.zeros((0, num_channels), np.float32)
        self._history_samples = 0  # of _recent, before the current chunk
        self.samples_seen = 0  # before the current chunk

    def advance(self, normalized: np.ndarray) -> None:
        """Take the next chunk (n, C) of filtered, normalized EMG."""
        self.samples_seen += len(self._recent) - self._history_samples
        # only the last window_samples - 1 before the chunk can be in a window
        keep = min(len(self._recent), self.window_samples - 1)
        self._recent = np.concatenate([self._recent[len(self._recent) - keep :],
                                       normalized])  # fmt: skip
        self._history_samples = keep

    def first_output_in_chunk(self) -> int:
        """The chunk index of the stream's first full window's end (< 0: earlier)."""
        return self.window_samples - 1 - self.samples_seen

    def output_ends(self) -> range:
        """Chunk sample indexes a full window can end at: every sample once full."""
        first = max(0, self.first_output_in_chunk())
        return range(first, len(self._recent) - self._history_samples)

    def joints_at(self, ends: list[int]) -> np.ndarray:
        """(m, 21, 3) mm: the model on the windows ending at chunk samples `ends`."""
        starts = [self._history_samples + end + 1 - self.window_samples for end in ends]
        windows = np.stack([self._recent[start : start + self.window_samples]
                            for start in starts])  # fmt: skip
        with torch.inference_mode():
            joints = self.model(torch.from_numpy(windows).to(self.device))["joints"]
        return joints.float().cpu().numpy()


class TcnRunner:
    """Streams a tcn frame by frame: caches per layer, each frame computed once.

    Frames are aligned to the stream's start (after a reset): frame f ends at
    stream sample `filter_samples - 1 + frame_samples - 1 + f * frame_samples`,
    as `Tcn.frame_features` on the whole stream. Outputs start once the stream
    holds a whole window (`window_samples`, by default the receptive field), from
    where they equal the window-end output of the window ending there."""

    def __init__(self, model: Tcn, device: torch.device) -> None:
        config = model.config
        self.model = model
        self.device = device
        self.step_samples = config.frame_samples
        self.filter_history = config.filter_samples - 1  # samples before a frame
        self.frame_span = self.filter_history + config.frame_samples
        frames_to_fill = -(-(config.window_samples - self.frame_span)
                           // config.frame_samples)  # fmt: skip
        self.first_output_sample = (
            self.frame_span - 1 + max(0, frames_to_fill) * config.frame_samples
        )
        self._engine = tcn_engine(model, device)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: caches to zeros, frames aligned to the next sample."""
        num_channels = self.model.config.num_channels
        # stream samples from buffer_start on that the next frames need
        self._buffer = np.zeros((0, num_channels), np.float32)
        self._buffer_start = 0
        self._state = self._engine.initial_stream_state()
        self._features = None  # (k, H) for the current chunk's new frames
        self._frame_ends: list[int] = []  # chunk sample indexes, one per frame
        self.samples_seen = 0  # through the current chunk
        self._chunk_start = 0  # the stream index of the current chunk's first sample

    def advance(self, normalized: np.ndarray) -> None:
        """Take the next chunk (n, C) and compute every frame it completes."""
        chunk_start = self.samples_seen
        self.samples_seen += len(normalized)
        self._buffer = np.concatenate([self._buffer, normalized])
        frames = max(0, len(self._buffer) - self.filter_history) // self.step_samples
        first_end = self._buffer_start + self.frame_span - 1 - chunk_start
        self._frame_ends = [first_end + f * self.step_samples for f in range(frames)]
        self._features = self._stream(frames)
        consumed = frames * self.step_samples
        self._buffer = self._buffer[consumed:]
        self._buffer_start += consumed
        self._chunk_start = chunk_start

    def _stream(self, frames: int):
        if frames == 0:
            return None
        span = self.filter_history + frames * self.step_samples
        emg = self._buffer[:span]
        features, self._state = self._engine.stream_features(emg, self._state)
        return features  # (frames, H)

    def first_output_in_chunk(self) -> int:
        """The chunk index of the stream's first output (< 0: earlier)."""
        return self.first_output_sample - self._chunk_start

    def output_ends(self) -> list[int]:
        """Chunk sample indexes of the new frames that end a full window."""
        first = self.first_output_in_chunk()
        return [end for end in self._frame_ends if end >= first]

    def joints_at(self, ends: list[int]) -> np.ndarray:
        """(m, 21, 3) mm at the frames ending at chunk samples `ends`."""
        rows = [self._frame_ends.index(end) for end in ends]
        joints_mm = self._engine.joints(self._features[rows])
        return np.asarray(joints_mm, np.float32)


class TorchTcn:
    """The tcn's own torch streaming step and heads, batch of one, on `device`:
    the engine for non-CPU devices, with `NumpyTcn`'s interface (numpy in and
    out, time-major)."""

    def __init__(self, model: Tcn, device: torch.device) -> None:
        self.model = model
        self.device = device

    def initial_stream_state(self) -> list[torch.Tensor]:
        return self.model.initial_stream_state()

    def stream_features(self, emg: np.ndarray, state: list[torch.Tensor]):
        emg = torch.from_numpy(emg[None]).to(self.device)
        with torch.inference_mode():
            features, state = self.model.stream_features(emg, state)
        return features[0].T, state  # (k, H) on the device

    def joints(self, features: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            joints = self.model.heads(features)["joints"]
        return joints.float().cpu().numpy()


def tcn_engine(model: Tcn, device: torch.device) -> NumpyTcn | TorchTcn:
    """numpy on CPU (see `inference.tcn_numpy`: the torch ops are too small to pay
    their overhead); the model's own torch code elsewhere, where a GPU is the
    point."""
    if device.type == "cpu":
        return NumpyTcn(model)
    return TorchTcn(model, device)


def runner_for(model: torch.nn.Module, device: torch.device):
    """The streaming runner for `model`. A tcn whose window is shorter than its
    receptive field is trained on zero-padded windows, so it runs as a window
    model to give the same outputs."""
    if isinstance(model, Tcn) and (
        model.config.window_samples >= model.config.receptive_field_samples
    ):
        return TcnRunner(model, device)
    return WindowRunner(model, device)
