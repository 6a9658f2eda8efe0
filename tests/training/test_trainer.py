"""The training loop, checkpoints, resume, evaluation and export, on tiny data."""

import json

import numpy as np
import pytest
import torch

from tests.training.sessions import (
    labeled_recording,
    with_channels,
    with_no_valid_labels,
)
from training.checkpoint import CheckpointError, load_model, read_checkpoint
from training.data import (
    DataError,
    WindowDataset,
    fit_normalization,
    from_recording,
)
from training.export import export_model
from training.preprocessing import FilterConfig
from training.trainer import TrainConfig, TrainingCancelled, train

# the seed's v5 with a narrow backbone: the same code path, seconds on a CPU
SMALL_V5 = {"conv_channels": (16, 32), "lstm_hidden": 32}
TINY = {"epochs": 2, "batch_size": 64, "stride_samples": 25, "model": "v5",
        "model_config": SMALL_V5}  # fmt: skip


@pytest.fixture(scope="module")
def sessions():
    """Two short sessions of one simulated person: (train, held out)."""
    return (
        [from_recording(labeled_recording(8.0, session=0), "a")],
        [from_recording(labeled_recording(6.0, session=1), "b")],
    )


@pytest.fixture(scope="module")
def trained(sessions, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("run")
    epochs_seen = []
    result = train(
        TrainConfig(**TINY), *sessions, out_dir,
        progress=lambda epoch, metrics: epochs_seen.append((epoch, metrics)),
    )  # fmt: skip
    return result, out_dir, epochs_seen


def test_it_trains_checkpoints_and_reports_every_epoch(trained):
    result, out_dir, epochs_seen = trained
    assert [epoch for epoch, _ in epochs_seen] == [1, 2]
    assert {"train_loss", "val_loss", "val_mpjpe_mm", "train_windows_per_s"} <= set(
        epochs_seen[0][1]
    )
    for name in ("last.pt", "best.pt", "final.pt"):
        assert (out_dir / name).is_file()
    assert result.epochs == 2 and result.stopped == "completed"
    assert len(result.history) == 2


def test_the_result_has_the_mean_pose_baseline_beside_the_model(trained):
    metrics = trained[0].metrics
    for side in ("model", "baseline"):
        assert metrics[side]["mpjpe_mm"] > 0
        assert len(metrics[side]["per_joint_mpjpe_mm"]) == 21
    assert metrics["windows"] > 0


def test_normalization_comes_from_the_training_sessions_only(trained, sessions):
    saved = read_checkpoint(trained[1] / "final.pt")["normalization"]
    expected = fit_normalization(sessions[0], FilterConfig()).as_dict()
    np.testing.assert_allclose(saved["mean"], expected["mean"], rtol=1e-6)
    both = fit_normalization(sessions[0] + sessions[1], FilterConfig()).as_dict()
    assert not np.allclose(saved["mean"], both["mean"], rtol=1e-6)


def test_the_checkpoint_alone_rebuilds_the_model(trained, sessions):
    loaded = load_model(trained[1] / "final.pt")
    emg = torch.randn(3, loaded.window_samples, len(loaded.channel_names))
    joints = loaded.model(emg)["joints"]
    assert joints.shape == (3, 21, 3) and torch.isfinite(joints).all()
    assert loaded.normalization.num_channels == sessions[0][0].num_channels


def test_resume_after_an_interruption_ends_with_the_same_weights(sessions, tmp_path):
    config = TrainConfig(**TINY | {"epochs": 3})
    train(config, *sessions, tmp_path / "straight")
    epochs_done = []
    interrupted = tmp_path / "interrupted"
    with pytest.raises(TrainingCancelled):
        # the worker dies at the first batch of epoch 2
        train(config, *sessions, interrupted,
              progress=lambda epoch, metrics: epochs_done.append(epoch),
              should_stop=lambda: bool(epochs_done))  # fmt: skip
    assert read_checkpoint(interrupted / "last.pt")["epoch"] == 1
    train(config, *sessions, interrupted)
    straight = read_checkpoint(tmp_path / "straight" / "last.pt")["state_dict"]
    resumed = read_checkpoint(interrupted / "last.pt")["state_dict"]
    for name, weights in straight.items():
        torch.testing.assert_close(resumed[name], weights, rtol=0, atol=0)


def test_resuming_into_a_folder_of_another_run_is_refused(sessions, trained):
    other = TrainConfig(**TINY | {"seed": 5})
    with pytest.raises(CheckpointError, match="different run"):
        train(other, *sessions, trained[1])


def test_a_time_budget_stops_after_the_epoch_that_passes_it(sessions, tmp_path):
    config = TrainConfig(**TINY | {"epochs": 50, "time_budget_s": 0.0})
    result = train(config, *sessions, tmp_path)
    assert result.epochs == 1 and result.stopped == "time_budget"


def test_random_window_splits_only_when_asked_and_with_a_warning(sessions, tmp_path):
    from training.data import InterpolationWarning

    config = TrainConfig(**TINY | {"epochs": 1, "random_split_fraction": 0.25})
    with pytest.warns(InterpolationWarning, match="interpolation"):
        result = train(config, *sessions, tmp_path)
    both = WindowDataset(sessions[0] + sessions[1], 50, 25, FilterConfig(),
                         fit_normalization(sessions[0], FilterConfig()))  # fmt: skip
    # a quarter of both sessions' windows, not the held-out session's
    assert result.metrics["windows"] == round(0.25 * len(both))
    assert read_checkpoint(tmp_path / "final.pt")["data"]["validation_sessions"] == []


def test_a_random_split_fraction_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="random_split_fraction"):
        TrainConfig(random_split_fraction=1.5)


def test_sessions_without_a_valid_label_are_refused():
    recording = with_no_valid_labels(labeled_recording(4.0, session=2))
    with pytest.raises(DataError, match="valid"):
        from_recording(recording, "c")


def test_sessions_too_short_for_one_window_are_refused(sessions, tmp_path):
    config = TrainConfig(
        **TINY | {"model_config": SMALL_V5 | {"window_samples": 10**6}}
    )
    with pytest.raises(DataError, match="no window has a valid label"):
        train(config, *sessions, tmp_path)


def test_mismatched_channel_counts_are_refused(sessions, tmp_path):
    sixteen = from_recording(with_channels(labeled_recording(4.0, session=2), 16), "c")
    with pytest.raises(DataError, match="16 channels"):
        train(TrainConfig(**TINY), sessions[0], [sixteen], tmp_path)


def test_a_corrupt_checkpoint_gets_a_clear_error(trained, tmp_path):
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes((trained[1] / "final.pt").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(damaged)
    not_ours = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, not_ours)
    with pytest.raises(CheckpointError, match="not an emg-hand-model checkpoint"):
        load_model(not_ours)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exports_reproduce_the_pytorch_model(trained, tmp_path, fmt):
    report = export_model(trained[1] / "final.pt", fmt, tmp_path / f"model.{fmt}")
    assert report["max_abs_diff_mm"] <= 1e-2
    assert (tmp_path / f"model.{fmt}").stat().st_size > 1000


def test_evaluate_command_prints_metrics_and_baseline(trained, tmp_path, capsys):
    from tests.training.sessions import write_recording
    from training.__main__ import main

    path = write_recording(tmp_path, "b", labeled_recording(6.0, session=1))
    status = main(["evaluate", "--checkpoint", str(trained[1] / "final.pt"),
                   "--sessions", str(path)])  # fmt: skip
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status == 0
    assert line["model"]["mpjpe_mm"] > 0 and line["baseline"]["mpjpe_mm"] > 0


def test_evaluate_command_names_a_channel_mismatch(trained, tmp_path, capsys):
    from tests.training.sessions import write_recording
    from training.__main__ import main

    recording = with_channels(labeled_recording(4.0, session=1), 16)
    path = write_recording(tmp_path, "c", recording)
    status = main(["evaluate", "--checkpoint", str(trained[1] / "final.pt"),
                   "--sessions", str(path)])  # fmt: skip
    assert status == 2
    assert "expects 8 EMG channels" in capsys.readouterr().err
