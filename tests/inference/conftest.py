"""Trained checkpoints for the inference tests: tiny runs on simulated sessions,
through the real trainer, a few seconds each."""

import pytest

from tests.training.sessions import labeled_recording
from training.data import from_recording
from training.trainer import TrainConfig, train

SMALL_V5 = {"conv_channels": (16, 32), "lstm_hidden": 32}
SMALL_TCN = {"filters": 16, "hidden": 32}


@pytest.fixture(scope="session")
def training_sessions():
    return (
        [from_recording(labeled_recording(6.0, session=0), "a")],
        [from_recording(labeled_recording(4.0, session=1), "b")],
    )


def _trained(model: str, model_config: dict, sessions, out_dir):
    config = TrainConfig(model=model, model_config=model_config, epochs=1,
                         batch_size=64, stride_samples=25)  # fmt: skip
    return train(config, *sessions, out_dir).final_checkpoint


@pytest.fixture(scope="session")
def tcn_checkpoint(training_sessions, tmp_path_factory):
    return _trained("tcn", SMALL_TCN, training_sessions, tmp_path_factory.mktemp("tcn"))


@pytest.fixture(scope="session")
def v5_checkpoint(training_sessions, tmp_path_factory):
    return _trained("v5", SMALL_V5, training_sessions, tmp_path_factory.mktemp("v5"))
