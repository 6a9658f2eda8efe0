"""Streaming inference: live EMG chunks -> hand poses, from a checkpoint file alone.

    predictor = LivePredictor.from_checkpoint("final.pt", output_rate_hz=60.0)
    frames = predictor.push(emg_uv, first_sample_time_s)  # list[PoseFrame]

Pure Python, numpy and torch; never imports Django. `python -m inference bench`
measures the update cost and how many streams one process keeps up with.
"""

from inference.frames import InferenceInputError, PoseFrame
from inference.predictor import LivePredictor
from inference.smoothing import OneEuroConfig

__all__ = ["InferenceInputError", "LivePredictor", "OneEuroConfig", "PoseFrame"]
