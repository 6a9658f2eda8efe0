"""The numpy tcn equals the torch tcn (stream features, joints, kinematics), and
runs with one BLAS thread."""

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from inference import LivePredictor
from inference.runners import TorchTcn, tcn_engine
from inference.tcn_numpy import NumpyKinematics, NumpyTcn
from training.models import build_model
from training.models.hand import HandKinematics

CONFIGS = {
    "default": {},
    "small": {"filters": 16, "hidden": 32},
    "odd": {"num_channels": 5, "kernel": 2, "dilations": (1, 3, 6), "hidden": 24,
            "sampling_rate_hz": 1000.0, "filter_s": 0.005},
}  # fmt: skip
# frames per update: the usual 1-2, a late 3, and a catch-up
FRAME_COUNTS = [1, 2, 1, 2, 3, 1, 7, 2, 1, 1, 2, 20, 2, 1]


def random_tcn(seed: int = 0, **config) -> torch.nn.Module:
    """A tcn with random weights and BatchNorm statistics far from the identity
    (as after training), in eval mode."""
    torch.manual_seed(seed)
    model = build_model("tcn", **config)
    norm = model.front_end.norm
    with torch.no_grad():
        norm.running_mean.normal_(-3.0, 1.0)
        norm.running_var.uniform_(0.3, 3.0)
        norm.weight.normal_(1.0, 0.3)
        norm.bias.normal_(0.0, 0.3)
    return model.eval()


def stream_chunks(model, frame_counts):
    """(EMG (T, C), [(start, stop)] of each update's samples): the filter's
    history, then each update's new frames."""
    config = model.config
    history = config.filter_samples - 1
    total_frames = sum(frame_counts)
    rng = np.random.default_rng(1)
    samples = history + total_frames * config.frame_samples
    emg = rng.normal(0, 1, (samples, config.num_channels)).astype(np.float32)
    chunks, frame = [], 0
    for frames in frame_counts:
        start = frame * config.frame_samples
        chunks.append((start, start + history + frames * config.frame_samples))
        frame += frames
    return emg, chunks


def streamed(engine, emg, chunks):
    """(frames, H) features of `engine` streamed over `chunks`."""
    state, features = engine.initial_stream_state(), []
    for start, stop in chunks:
        new, state = engine.stream_features(emg[start:stop], state)
        features.append(np.asarray(new))
    return np.concatenate(features)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_stream_features_equal_the_torch_tcn(name):
    model = random_tcn(**CONFIGS[name])
    emg, chunks = stream_chunks(model, FRAME_COUNTS)
    features = streamed(NumpyTcn(model), emg, chunks)
    with torch.no_grad():
        offline = model.frame_features(torch.from_numpy(emg[None]))[0].T.numpy()
    assert features.shape == offline.shape
    np.testing.assert_allclose(features, offline, rtol=1e-4, atol=1e-5)
    torch_streamed = streamed(TorchTcn(model, torch.device("cpu")), emg, chunks)
    np.testing.assert_allclose(features, torch_streamed, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_joints_equal_the_torch_heads(name):
    model = random_tcn(**CONFIGS[name])
    features = torch.randn(9, model.config.hidden) * 2.0
    with torch.no_grad():
        expected = model.heads(features)["joints"].numpy()
    joints_mm = NumpyTcn(model).joints(features.double().numpy())
    assert joints_mm.shape == (9, 21, 3)
    np.testing.assert_allclose(joints_mm, expected, rtol=1e-4, atol=1e-3)


def test_the_window_end_output_equals_the_model_on_the_window():
    """End to end: streaming to a frame, then the heads, is the model's forward
    on the window (the receptive field) ending there."""
    model = random_tcn(seed=3)
    engine = NumpyTcn(model)
    emg, chunks = stream_chunks(model, FRAME_COUNTS)
    joints_mm = engine.joints(streamed(engine, emg, chunks)[-1:])
    window = emg[len(emg) - model.config.window_samples :]
    with torch.no_grad():
        expected = model(torch.from_numpy(window[None]))["joints"].numpy()
    np.testing.assert_allclose(joints_mm, expected, rtol=1e-4, atol=1e-3)


def test_kinematics_equal_the_torch_hand_far_from_rest():
    angles = torch.randn(200, 20, dtype=torch.float64) * 1.5  # up to ~4 rad
    with torch.no_grad():
        _, expected = HandKinematics().double()(angles)
    joints_mm = NumpyKinematics().joints_mm(angles.numpy())
    # the torch hand's axes were rounded to float32 before .double()
    np.testing.assert_allclose(joints_mm, expected.numpy(), atol=1e-5)


def test_the_torch_engine_runs_off_cpu_only():
    model = random_tcn()
    assert isinstance(tcn_engine(model, torch.device("cpu")), NumpyTcn)
    assert isinstance(tcn_engine(model, torch.device("meta")), TorchTcn)


def test_a_predictor_leaves_numpy_one_blas_thread(tcn_checkpoint):
    """Else a one-frame update's product is threaded and the idle BLAS worker
    spins a core between updates."""
    LivePredictor.from_checkpoint(tcn_checkpoint)
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas, "numpy loaded no BLAS"
    assert all(pool["num_threads"] == 1 for pool in blas), blas
