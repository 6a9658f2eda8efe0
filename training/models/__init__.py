"""The model zoo: EMG window -> hand pose at the window end.

Every model maps `emg` (B, T, C) float32 (band-passed, per-channel normalized;
T = config.window_samples at config.sampling_rate_hz) to a dict with "joints"
(B, 21, 3) mm (hand frame, wrist at the origin, MediaPipe order) and, for some,
"angles" (B, 20) rad (ANGLE_NAMES order) and "pose" (B, 48) MANO. Each model keeps
its settings in one dataclass, `model.config`, saved with every checkpoint.

- v4, v5: the seed paper's Conv1D + LSTM, to θ (through the hand model) and to joints.
- vemg2pose: emg2pose's TDS featurizer + velocity-integrating LSTM.
- neuropose: a NeuroPose-style conv encoder-decoder.
- tcn: our causal temporal-conv network on learned EMG envelopes.
"""

from __future__ import annotations

import dataclasses

import torch

from training.models.neuropose import NeuroPose, NeuroPoseConfig
from training.models.seed import SeedConfig, SeedJointsModel, SeedThetaModel
from training.models.tcn import Tcn, TcnConfig
from training.models.vemg2pose import VEmg2Pose, VEmg2PoseConfig

_MODELS: dict[str, tuple[type, type]] = {
    "v4": (SeedConfig, SeedThetaModel),
    "v5": (SeedConfig, SeedJointsModel),
    "vemg2pose": (VEmg2PoseConfig, VEmg2Pose),
    "neuropose": (NeuroPoseConfig, NeuroPose),
    "tcn": (TcnConfig, Tcn),
}
MODEL_NAMES: tuple[str, ...] = tuple(_MODELS)


def _entry(name: str) -> tuple[type, type]:
    if name not in _MODELS:
        raise ValueError(
            f"unknown model {name!r}; the models are {', '.join(MODEL_NAMES)}"
        )
    return _MODELS[name]


def config_class(name: str) -> type:
    """The settings dataclass of model `name`."""
    return _entry(name)[0]


def build_model(name: str, **config_values) -> torch.nn.Module:
    """A fresh model `name`; `config_values` override its dataclass defaults.
    ValueError names an unknown model or field."""
    config_type, model_type = _entry(name)
    fields = {field.name for field in dataclasses.fields(config_type)}
    unknown = sorted(set(config_values) - fields)
    if unknown:
        raise ValueError(
            f"model {name!r} has no setting {', '.join(map(repr, unknown))}; "
            f"its settings are {', '.join(sorted(fields))}"
        )
    return model_type(config_type(**config_values))


def model_from_config(name: str, config: dict) -> torch.nn.Module:
    """Rebuild model `name` from a checkpoint's saved `dataclasses.asdict(config)`
    (lists from JSON are fine where the dataclass holds tuples)."""
    return build_model(name, **dict(config))


def count_parameters(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())
