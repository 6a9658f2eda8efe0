"""Per-user calibration: fine-tuning a pre-trained checkpoint on one person's short
recording, on tiny simulated data."""

import json

import numpy as np
import pytest
import torch

from recorder.guided.protocols import load_protocol_file
from recorder.simulation.gestures import GESTURES
from tests.training.sessions import labeled_recording, with_channels, write_recording
from training.__main__ import main
from training.calibration import (
    FineTuneConfig,
    finetune,
    split_tail,
)
from training.calibration_bench import (
    CALIBRATION_FILE,
    band_rotation_deg,
    calibration_protocol,
)
from training.checkpoint import CheckpointError, load_model, read_checkpoint
from training.data import DataError, fit_normalization, from_recording
from training.preprocessing import FilterConfig
from training.trainer import TrainConfig, train

# the tcn at a fraction of its width: the same code path, a second per epoch
TINY_TCN = {"filters": 8, "hidden": 16, "dilations": (1, 2, 4)}
TINY = FineTuneConfig(epochs=2, batch_size=64, stride_samples=25, device="cpu")


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory):
    """A tiny tcn pre-trained on simulated person 1."""
    config = TrainConfig(
        model="tcn", model_config=TINY_TCN, epochs=1, batch_size=64,
        stride_samples=25, device="cpu",
    )  # fmt: skip
    people = [from_recording(labeled_recording(6.0, subject_seed=1), "p1")]
    held_out = [from_recording(labeled_recording(4.0, subject_seed=1, session=1), "h")]
    out_dir = tmp_path_factory.mktemp("base")
    return train(config, people, held_out, out_dir).final_checkpoint


@pytest.fixture(scope="module")
def calibration():
    """Eight seconds of a new person (simulated subject 2)."""
    return from_recording(labeled_recording(8.0, subject_seed=2), "calibration")


@pytest.fixture(scope="module")
def tuned(base_checkpoint, calibration, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("tuned")
    epochs_seen = []
    config = FineTuneConfig(**TINY.as_dict() | {"freeze": ("blocks",)})
    result = finetune(base_checkpoint, [calibration], out_dir, config,
                      progress=lambda epoch, _: epochs_seen.append(epoch))  # fmt: skip
    return result, epochs_seen


def test_it_writes_a_new_checkpoint_that_live_inference_loads(tuned, base_checkpoint):
    result, epochs_seen = tuned
    assert epochs_seen == [1, 2] and result.epochs == 2
    assert result.final_checkpoint.is_file()
    assert result.final_checkpoint != base_checkpoint
    loaded = load_model(result.final_checkpoint)
    assert loaded.model_name == "tcn" and loaded.model.config.hidden == 16
    assert result.metrics["model"]["mpjpe_mm"] > 0
    assert result.metrics["baseline"]["mpjpe_mm"] > 0


def test_it_starts_from_the_base_weights_and_keeps_frozen_ones(tuned, base_checkpoint):
    base = read_checkpoint(base_checkpoint)["state_dict"]
    tuned_weights = read_checkpoint(tuned[0].final_checkpoint)["state_dict"]
    frozen = [name for name in base if name.startswith("blocks.")]
    assert frozen
    for name in frozen:
        torch.testing.assert_close(tuned_weights[name], base[name], rtol=0, atol=0)
    first_layer = "front_end.filter_bank.weight"
    moved = (tuned_weights[first_layer] - base[first_layer]).abs().max()
    # it moved, but a little: a fresh init would be as far as the weights are big
    assert 0 < moved < 0.2 * base[first_layer].abs().max()


def test_the_checkpoint_records_where_it_came_from(tuned, base_checkpoint):
    contents = read_checkpoint(tuned[0].final_checkpoint)
    provenance = contents["finetuned_from"]
    assert provenance["checkpoint"] == str(base_checkpoint)
    assert provenance["finetune_config"]["freeze"] == ("blocks",)
    assert all(name.startswith("blocks.") for name in provenance["frozen_parameters"])
    assert contents["data"]["train_sessions"] == ["calibration (first 80%)"]
    assert contents["data"]["validation_sessions"] == ["calibration (last 20%)"]


def test_the_normalization_is_refitted_on_the_calibration(tuned, calibration):
    saved = read_checkpoint(tuned[0].final_checkpoint)["normalization"]
    head, _ = split_tail(calibration, 0.2)
    expected = fit_normalization([head], FilterConfig()).as_dict()
    np.testing.assert_allclose(saved["std"], expected["std"], rtol=1e-6)


def test_the_base_normalization_and_filter_can_be_kept(
    base_checkpoint, calibration, tmp_path
):
    config = FineTuneConfig(**TINY.as_dict() | {
        "epochs": 1, "normalization": "checkpoint", "filter": {"notch_hz": 60.0},
    })  # fmt: skip
    result = finetune(base_checkpoint, [calibration], tmp_path, config)
    base, contents = (
        read_checkpoint(base_checkpoint),
        read_checkpoint(result.final_checkpoint),
    )
    assert contents["normalization"] == base["normalization"]
    assert contents["filter"] == base["filter"] | {"notch_hz": 60.0}


def test_the_held_out_tail_shares_no_emg_with_the_training_part(calibration):
    head, tail = split_tail(calibration, 0.25)
    assert head.emg_time.max() < tail.emg_time.min()
    assert head.frame_time.max() < tail.frame_time.min()
    assert len(head.emg) + len(tail.emg) == len(calibration.emg)
    duration_s = calibration.emg_time[-1] - calibration.emg_time[0]
    tail_s = tail.emg_time[-1] - tail.emg_time[0]
    assert tail_s == pytest.approx(0.25 * duration_s, abs=0.01)


def test_given_held_out_sessions_validate_instead(base_checkpoint, calibration,
                                                  tmp_path):  # fmt: skip
    other = from_recording(labeled_recording(4.0, subject_seed=2, session=1), "later")
    config = FineTuneConfig(**TINY.as_dict() | {"epochs": 1})
    result = finetune(base_checkpoint, [calibration], tmp_path, config, [other])
    data = read_checkpoint(result.final_checkpoint)["data"]
    assert data == {"train_sessions": ["calibration"], "validation_sessions": ["later"]}


def test_a_rerun_with_more_epochs_resumes(base_checkpoint, calibration, tmp_path):
    one = FineTuneConfig(**TINY.as_dict() | {"epochs": 1})
    first = finetune(base_checkpoint, [calibration], tmp_path, one)
    second = finetune(base_checkpoint, [calibration], tmp_path, TINY)
    assert second.history[0] == first.history[0]
    assert [h["epoch"] for h in second.history] == [1, 2]


def test_another_channel_count_is_refused(base_checkpoint, calibration, tmp_path):
    four = from_recording(with_channels(labeled_recording(4.0, subject_seed=2), 4),
                          "four")  # fmt: skip
    with pytest.raises(DataError, match="expects 8 EMG channels, session four"):
        finetune(base_checkpoint, [four], tmp_path, TINY)


@pytest.mark.parametrize("fields,message", [
    ({"freeze": ("lstm",)}, "no parameter of this model starts with 'lstm'"),
    ({"freeze": ("front_end", "blocks", "angles_head", "correction_head")},
     "fixes every parameter"),
])  # fmt: skip
def test_bad_freezing_is_refused(base_checkpoint, calibration, tmp_path, fields,
                                 message):  # fmt: skip
    config = FineTuneConfig(**TINY.as_dict() | fields)
    with pytest.raises(ValueError, match=message):
        finetune(base_checkpoint, [calibration], tmp_path, config)


@pytest.mark.parametrize("fields,message", [
    ({"normalization": "person"}, "normalization must be one of"),
    ({"validation_fraction": 1.0}, "validation_fraction must be in"),
    ({"learning_rate": 0.0}, "learning_rate must be > 0"),
])  # fmt: skip
def test_bad_settings_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        FineTuneConfig(**fields)


def test_a_missing_base_checkpoint_is_refused(calibration, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        finetune(tmp_path / "nothing.pt", [calibration], tmp_path / "out", TINY)


def test_the_command_fine_tunes_session_files(base_checkpoint, tmp_path, capsys):
    path = write_recording(tmp_path, "calib", labeled_recording(8.0, subject_seed=2))
    code = main([
        "finetune", "--checkpoint", str(base_checkpoint), "--sessions", str(path),
        "--out", str(tmp_path / "out"), "--epochs", "1", "--batch-size", "64",
        "--device", "cpu",
    ])  # fmt: skip
    assert code == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["checkpoint"] == str(tmp_path / "out" / "final.pt")
    assert line["base"] == str(base_checkpoint) and line["mpjpe_mm"] > 0
    provenance = load_model(line["checkpoint"]).contents["finetuned_from"]
    # by default the tcn adapts its front end only
    frozen = {name.split(".")[0] for name in provenance["frozen_parameters"]}
    assert frozen == {"blocks", "angles_head", "correction_head"}


def test_the_command_names_a_bad_checkpoint(tmp_path, capsys):
    path = write_recording(tmp_path, "calib", labeled_recording(4.0, subject_seed=2))
    code = main(["finetune", "--checkpoint", str(tmp_path / "x.pt"), "--sessions",
                 str(path), "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 2
    assert "no checkpoint file" in capsys.readouterr().err


def test_the_simulated_calibration_follows_the_guided_protocol():
    protocol = load_protocol_file(CALIBRATION_FILE)
    steps = calibration_protocol()
    assert sum(hold_s for _, hold_s in steps) == pytest.approx(protocol.duration_s)
    assert {gesture for gesture, _ in steps} <= set(GESTURES)
    asked = {step.gesture for step in protocol.steps}
    assert asked <= {gesture for gesture, _ in steps}


def test_each_person_wears_the_band_their_own_way():
    placements = [band_rotation_deg(seed, 20.0) for seed in range(20)]
    assert all(-20.0 <= deg <= 20.0 for deg in placements)
    assert len(set(placements)) == 20
    assert band_rotation_deg(3, 20.0) == band_rotation_deg(3, 20.0)
