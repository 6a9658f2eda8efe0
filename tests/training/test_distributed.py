"""DistributedDataParallel training on the CPU (gloo, 2 processes) ends where
one-process training ends: the same weights and validation MPJPE, within rounding."""

import pytest
import torch

from tests.training.sessions import labeled_recording
from training.checkpoint import read_checkpoint
from training.data import from_recording
from training.distributed import train_distributed
from training.models import build_model
from training.trainer import TrainConfig, TrainingCancelled, train

# the seed's v5, narrow: no batch norm (PyTorch syncs it on GPUs only), no dropout;
# 150 training windows in batches of 64, so the last batch splits unevenly
SMALL_V5 = {"conv_channels": (8, 16), "lstm_hidden": 16, "lstm_layers": 1}
CONFIG = TrainConfig(
    model="v5", model_config=SMALL_V5, epochs=2, batch_size=64, stride_samples=25,
    augment=True, early_stopping_patience=None, device="cpu", seed=3,
)  # fmt: skip


@pytest.fixture(scope="module")
def sessions():
    return (
        [from_recording(labeled_recording(8.0, session=0), "a")],
        [from_recording(labeled_recording(4.0, session=1), "b")],
    )


@pytest.fixture(scope="module")
def one_process(sessions, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("one")
    return train(CONFIG, *sessions, out_dir), out_dir


@pytest.fixture(scope="module")
def two_processes(sessions, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("two")
    epochs_seen = []
    result = train_distributed(
        CONFIG, *sessions, out_dir, world_size=2, backend="gloo",
        progress=lambda epoch, metrics: epochs_seen.append((epoch, metrics)),
    )  # fmt: skip
    return result, out_dir, epochs_seen


def weights(out_dir) -> dict:
    return read_checkpoint(out_dir / "final.pt")["state_dict"]


def test_two_processes_end_with_the_weights_of_one(one_process, two_processes):
    single, distributed = weights(one_process[1]), weights(two_processes[1])
    for name, value in single.items():
        torch.testing.assert_close(distributed[name], value, atol=2e-5, rtol=1e-4)
    # and training moved them far beyond that tolerance
    start = weights_at_start()
    assert max((single[n] - start[n]).abs().max() for n in single) > 2e-3


def weights_at_start() -> dict:
    torch.manual_seed(CONFIG.seed)  # as the trainer seeds the initial weights
    model = build_model("v5", num_channels=8, sampling_rate_hz=500.0, **SMALL_V5)
    return model.state_dict()


def test_two_processes_reach_the_validation_mpjpe_of_one(one_process, two_processes):
    single, distributed = one_process[0], two_processes[0]
    assert distributed.epochs == single.epochs == 2
    for ours, theirs in zip(distributed.history, single.history, strict=True):
        assert ours["val_mpjpe_mm"] == pytest.approx(theirs["val_mpjpe_mm"], rel=1e-4)
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4)
    model_mm = distributed.metrics["model"]["mpjpe_mm"]
    assert model_mm == pytest.approx(single.metrics["model"]["mpjpe_mm"], rel=1e-4)
    assert distributed.metrics["baseline"] == single.metrics["baseline"]


def test_rank_zero_writes_the_checkpoints_and_reports_every_epoch(two_processes):
    result, out_dir, epochs_seen = two_processes
    assert [epoch for epoch, _ in epochs_seen] == [1, 2]
    assert epochs_seen[-1][1]["val_mpjpe_mm"] == result.history[-1]["val_mpjpe_mm"]
    for name in ("last.pt", "best.pt", "final.pt"):
        assert (out_dir / name).is_file()
    assert read_checkpoint(out_dir / "last.pt")["epoch"] == 2


def test_a_cancel_stops_every_rank(sessions, tmp_path):
    with pytest.raises(TrainingCancelled, match="cancelled during epoch 1"):
        train_distributed(CONFIG, *sessions, tmp_path, world_size=2, backend="gloo",
                          should_stop=lambda: True)  # fmt: skip
    assert not (tmp_path / "last.pt").exists()


def test_one_process_is_not_distributed(sessions, tmp_path):
    with pytest.raises(ValueError, match="needs 2 or more processes, not 1"):
        train_distributed(CONFIG, *sessions, tmp_path, world_size=1, backend="gloo")
