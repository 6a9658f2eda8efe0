"""Live gestures from EMG through a CPEP checkpoint. The encoders here are untrained
(tiny, random): these tests check the plumbing (checkpoint, filter, window, hop,
gallery); the benchmark measures how well a trained model recognizes."""

import numpy as np
import pytest
import torch

from inference.cpep_gestures import CpepGestureRecognizer, default_example_angles
from training.cpep.checkpoint import CpepModel, load_cpep, save_cpep
from training.cpep.contrastive import EmgEmbedder
from training.cpep.encoders import SignalEncoder, emg_config, pose_config
from training.cpep.retrieval import unit_rows
from training.cpep.windows import normalized
from training.preprocessing import FilterConfig, Normalization, filter_emg
from training.simulated import simulated_labeled_session


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    emg, pose = emg_config(8, 500.0, "tiny"), pose_config(20, 30.0, "tiny")
    model = CpepModel(
        embedder=EmgEmbedder(SignalEncoder(emg), pose.model_dim).eval(),
        pose_encoder=SignalEncoder(pose).eval(),
        emg_normalization=Normalization(np.zeros(8), np.full(8, 20.0)),
        pose_normalization=Normalization(np.full(20, 0.3), np.full(20, 0.5)),
        filter_config=FilterConfig(), sampling_rate_hz=500.0, pose_rate_hz=30.0,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("cpep") / "cpep.pt"
    save_cpep(model, path)
    return path


def test_a_checkpoint_brings_back_the_same_embeddings(checkpoint):
    loaded = load_cpep(checkpoint)
    again = load_cpep(checkpoint)
    window = torch.randn(2, 996, 8)
    with torch.no_grad():
        assert torch.equal(loaded.embedder(window), again.embedder(window))
    assert loaded.embedder.temperature == pytest.approx(0.02)
    assert (loaded.sampling_rate_hz, loaded.pose_rate_hz) == (500.0, 30.0)


def test_a_file_that_is_not_a_cpep_checkpoint_is_named(tmp_path):
    other = tmp_path / "tcn.pt"
    torch.save({"format": "something else"}, other)
    with pytest.raises(ValueError, match="tcn.pt: not a CPEP checkpoint"):
        load_cpep(other)


def test_live_emg_gets_a_gesture_once_a_window_has_filled(checkpoint):
    recognizer = CpepGestureRecognizer.from_checkpoint(checkpoint, hop_s=0.25)
    emg = simulated_labeled_session(4.0, subject_seed=3).emg
    guesses = [recognizer.push(emg[i : i + 100]) for i in range(0, 2000, 100)]
    assert all(g is None for g in guesses[:9])  # 900 of the 996 samples
    assert guesses[9] is not None and guesses[9].gesture in default_example_angles()
    assert 0.0 < guesses[9].confidence <= 1.0
    assert guesses[10] is guesses[9]  # 0.2 s later: not yet a new guess
    assert guesses[12] is not guesses[9]  # 0.3 s later: a new one
    # the guess is the example whose pose embedding is nearest the EMG's
    model = recognizer.model
    window = model.emg_normalization.apply(
        filter_emg(emg[:2000], 500.0, model.filter_config)
    )[-996:]
    with torch.no_grad():
        emg_embedding = unit_rows(
            model.embedder(torch.from_numpy(window[None])).numpy()
        )
    poses = np.stack(
        [np.repeat(a, 60, axis=0) for a in default_example_angles().values()]
    )
    with torch.no_grad():
        pose_embedding = model.pose_encoder.embed(
            torch.from_numpy(
                normalized(poses.astype(np.float32), model.pose_normalization)
            )
        ).numpy()
    nearest = int((emg_embedding @ unit_rows(pose_embedding).T).argmax())
    assert guesses[-1].gesture == list(default_example_angles())[nearest]


def test_gestures_are_whatever_examples_it_is_given(checkpoint):
    fist = default_example_angles()["fist"]
    recognizer = CpepGestureRecognizer.from_checkpoint(
        checkpoint, examples={"grip": fist, "loose": fist * 0.2}
    )
    guess = recognizer.classify(np.zeros((996, 8), np.float32))
    assert guess.gesture in {"grip", "loose"}
    with pytest.raises(ValueError, match="'wave'.*joint angles"):
        CpepGestureRecognizer.from_checkpoint(checkpoint, examples={"wave": np.ones(3)})
