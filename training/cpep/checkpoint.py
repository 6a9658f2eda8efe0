"""A CPEP checkpoint: everything a live gesture recognizer needs, in one file.

It holds the aligned EMG embedder (encoder, projection head, temperature) and the
frozen pose encoder with their configs, the EMG filter and both normalizations,
and the rates the encoders were scaled to. Written with torch.save; read back with
weights_only=True (plain tensors, lists and numbers only).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from training.cpep.contrastive import EmgEmbedder
from training.cpep.encoders import EncoderConfig, SignalEncoder
from training.preprocessing import FilterConfig, Normalization

FORMAT = "cpep-1"


@dataclass
class CpepModel:
    embedder: EmgEmbedder
    pose_encoder: SignalEncoder
    emg_normalization: Normalization
    pose_normalization: Normalization
    filter_config: FilterConfig
    sampling_rate_hz: float  # EMG
    pose_rate_hz: float  # label frames

    @property
    def pooling(self) -> str:
        return self.embedder.pooling


def save_cpep(model: CpepModel, path: str | Path) -> None:
    torch.save(
        {
            "format": FORMAT,
            "emg_config": asdict(model.embedder.encoder.config),
            "pose_config": asdict(model.pose_encoder.config),
            "pooling": model.pooling,
            "embedder": model.embedder.state_dict(),
            "pose_encoder": model.pose_encoder.state_dict(),
            "emg_normalization": model.emg_normalization.as_dict(),
            "pose_normalization": model.pose_normalization.as_dict(),
            "filter": model.filter_config.as_dict(),
            "sampling_rate_hz": model.sampling_rate_hz,
            "pose_rate_hz": model.pose_rate_hz,
        },
        path,
    )


def load_cpep(path: str | Path) -> CpepModel:
    """ValueError naming the file when it is not a CPEP checkpoint."""
    try:
        contents = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a bad file
        raise ValueError(f"{path}: not a readable checkpoint ({error})") from error
    if not isinstance(contents, dict) or contents.get("format") != FORMAT:
        raise ValueError(f"{path}: not a CPEP checkpoint (format {FORMAT} expected)")
    pose_config = EncoderConfig(**contents["pose_config"])
    pose_encoder = SignalEncoder(pose_config)
    pose_encoder.load_state_dict(contents["pose_encoder"])
    embedder = EmgEmbedder(
        SignalEncoder(EncoderConfig(**contents["emg_config"])),
        pose_config.model_dim,
        contents["pooling"],
    )
    embedder.load_state_dict(contents["embedder"])
    return CpepModel(
        embedder=embedder.eval(),
        pose_encoder=pose_encoder.eval(),
        emg_normalization=Normalization.from_dict(contents["emg_normalization"]),
        pose_normalization=Normalization.from_dict(contents["pose_normalization"]),
        filter_config=FilterConfig(**contents["filter"]),
        sampling_rate_hz=float(contents["sampling_rate_hz"]),
        pose_rate_hz=float(contents["pose_rate_hz"]),
    )
