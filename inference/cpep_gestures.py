"""Live gestures from EMG alone, through a CPEP checkpoint (training/cpep).

Gestures are defined by example poses (joint angles, rad), as for the pose-based
recognizer (inference.gestures), with no retraining: each example is held still for
a window and embedded by the checkpoint's frozen pose encoder. The live EMG is
filtered causally and normalized as in training; every `hop_s`, the newest window
is embedded by the aligned EMG encoder and compared with the examples by cosine
similarity. The confidence is CPEP's own softmax: over the gestures of their best
example's similarity divided by the learned temperature.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from inference.gestures import DEFAULT_GESTURES, GestureGuess
from training.cpep.checkpoint import CpepModel, load_cpep
from training.cpep.retrieval import unit_rows
from training.cpep.windows import normalized
from training.preprocessing import CausalFilter, design_sos

HOP_S = 0.25


def default_example_angles() -> dict[str, np.ndarray]:
    """Gesture -> (1, 20) rad: the recording prompts' target poses."""
    from recorder.guided.poses import TARGET_ANGLES

    return {name: TARGET_ANGLES[name][None] for name in DEFAULT_GESTURES}


class CpepGestureRecognizer:
    """Feed it raw EMG chunks (`push`); it names the gesture of the newest window."""

    def __init__(
        self, model: CpepModel, examples: dict[str, np.ndarray] | None = None,
        hop_s: float = HOP_S,
    ) -> None:  # fmt: skip
        self.model = model
        config = model.embedder.encoder.config
        self.window_samples = config.window_steps
        self.hop_samples = max(1, int(round(hop_s * model.sampling_rate_hz)))
        self._filter = CausalFilter(
            design_sos(model.filter_config, model.sampling_rate_hz), config.features
        )
        self.names, self.gallery, self.owner = self._embed_examples(
            examples if examples is not None else default_example_angles()
        )
        self.reset()

    @classmethod
    def from_checkpoint(cls, path: str | Path, **options) -> CpepGestureRecognizer:
        return cls(load_cpep(path), **options)

    def _embed_examples(self, examples: dict[str, np.ndarray]):
        if not examples:
            raise ValueError("a gesture recognizer needs at least one gesture")
        pose_config = self.model.pose_encoder.config
        names, windows, owner = list(examples), [], []
        for index, name in enumerate(names):
            angles = np.atleast_2d(np.asarray(examples[name], dtype=np.float32))
            if angles.shape[1] != pose_config.features or not np.isfinite(angles).all():
                raise ValueError(
                    f"gesture {name!r}: examples must be finite (n, "
                    f"{pose_config.features}) joint angles, got {angles.shape}"
                )
            still = np.repeat(angles[:, None, :], pose_config.window_steps, axis=1)
            windows.append(normalized(still, self.model.pose_normalization))
            owner += [index] * len(angles)
        with torch.no_grad():
            embedding = self.model.pose_encoder.embed(
                torch.from_numpy(np.concatenate(windows)), self.model.pooling
            )
        return names, unit_rows(embedding.numpy()), np.array(owner)

    def reset(self) -> None:
        self._filter.reset()
        self._window = np.zeros((0, self.model.embedder.encoder.config.features))
        self._since_guess = 0
        self.guess: GestureGuess | None = None

    def push(self, emg_uv: np.ndarray) -> GestureGuess | None:
        """Raw EMG (n, C) µV in stream order -> the newest guess (None until the
        first window has filled)."""
        filtered = self._filter.process(emg_uv)
        emg = self.model.emg_normalization.apply(filtered)
        self._window = np.concatenate([self._window, emg])[-self.window_samples :]
        self._since_guess += len(emg)
        full = len(self._window) == self.window_samples
        if full and (self.guess is None or self._since_guess >= self.hop_samples):
            self.guess = self.classify(self._window)
            self._since_guess = 0
        return self.guess

    def classify(self, emg_window: np.ndarray) -> GestureGuess:
        """One normalized EMG window (T, C) -> its gesture."""
        with torch.no_grad():
            embedding = self.model.embedder(
                torch.from_numpy(emg_window[None].astype(np.float32))
            )
        similarity = unit_rows(embedding.numpy())[0] @ self.gallery.T  # (E,)
        best = np.full(len(self.names), -np.inf)
        np.maximum.at(best, self.owner, similarity)
        logits = best / self.model.embedder.temperature
        weights = np.exp(logits - logits.max())
        index = int(best.argmax())
        return GestureGuess(self.names[index], float(weights[index] / weights.sum()))
