"""Export a checkpoint's network to TorchScript or ONNX, and prove the export.

The exported graph maps normalized EMG (B, window_samples, C) float32 to joints
(B, 21, 3) mm; preprocessing (filters, normalization) stays with the caller and is
in the checkpoint. Every export is loaded back (torch.jit.load, onnxruntime) and
its output compared with the PyTorch model on fresh inputs; a mismatch fails.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from training.checkpoint import load_model

FORMATS = ("torchscript", "onnx")
CHECK_WINDOWS = 4
TOLERANCE_MM = 1e-2  # float32 round-off across runtimes; real bugs are mm-sized
ONNX_OPSET = 17


class ExportError(RuntimeError):
    """An export could not be written, or does not reproduce the model."""


class JointsOnly(torch.nn.Module):
    """The model with a plain tensor output, as export formats want."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, emg: torch.Tensor) -> torch.Tensor:
        return self.model(emg)["joints"]  # (B, 21, 3) mm


def export_model(checkpoint: str | Path, fmt: str, out: str | Path) -> dict:
    """Write the export to `out`; returns {"format", "path", "max_abs_diff_mm"}."""
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {FORMATS}, not {fmt!r}")
    loaded = load_model(checkpoint)
    network = JointsOnly(loaded.model).eval()
    channels = len(loaded.channel_names)
    example = torch.zeros(1, loaded.window_samples, channels)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "torchscript":
        run_export = _torchscript(network, example, out)
    else:
        run_export = _onnx(network, example, out)
    check = torch.randn(
        CHECK_WINDOWS, loaded.window_samples, channels,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    with torch.no_grad():
        expected = network(check).numpy()
    difference = float(np.abs(run_export(check.numpy()) - expected).max())
    if not difference <= TOLERANCE_MM:
        raise ExportError(
            f"the {fmt} export differs from the PyTorch model by {difference:.4f} mm"
        )
    return {"format": fmt, "path": str(out), "max_abs_diff_mm": difference}


def _torchscript(network, example, out: Path):
    with torch.no_grad():
        traced = torch.jit.trace(network, example)
    traced.save(str(out))
    reloaded = torch.jit.load(str(out))

    def run(emg: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return reloaded(torch.from_numpy(emg)).numpy()

    return run


def _onnx(network, example, out: Path):
    import onnxruntime

    torch.onnx.export(
        network, (example,), str(out), input_names=["emg"], output_names=["joints"],
        dynamic_axes={"emg": {0: "batch"}, "joints": {0: "batch"}},
        opset_version=ONNX_OPSET, dynamo=False,
    )  # fmt: skip
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])

    def run(emg: np.ndarray) -> np.ndarray:
        return session.run(["joints"], {"emg": emg})[0]

    return run
