import math

import numpy as np
import pytest
import torch

from training.cpep.contrastive import INITIAL_TEMPERATURE, EmgEmbedder, align, info_nce
from training.cpep.encoders import SignalEncoder, emg_config, pose_config
from training.cpep.optim import OptimConfig
from training.cpep.windows import random_channel_rotation, rotate_channels


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread is faster than two that wait for each other on a
    busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def direct_info_nce(emg, pose, temperature):
    """The seed's formula, term by term."""
    n = len(emg)
    u = [e / np.linalg.norm(e) for e in emg]
    v = [p / np.linalg.norm(p) for p in pose]
    s = [[float(u[i] @ v[j]) / temperature for j in range(n)] for i in range(n)]
    total = 0.0
    for i in range(n):
        row = sum(math.exp(s[i][j]) for j in range(n))
        column = sum(math.exp(s[j][i]) for j in range(n))
        total += -math.log(math.exp(s[i][i]) / row) - math.log(
            math.exp(s[i][i]) / column
        )
    return total / (2 * n)


@pytest.mark.parametrize("temperature", [0.02, 0.5])
def test_info_nce_equals_the_direct_computation(temperature):
    rng = np.random.default_rng(3)
    emg, pose = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    loss = info_nce(
        torch.tensor(emg),
        torch.tensor(pose),
        torch.tensor(math.log(1 / temperature), dtype=torch.float64),
    )
    assert float(loss) == pytest.approx(
        direct_info_nce(emg, pose, temperature), rel=1e-9
    )


def test_info_nce_is_lowest_when_pairs_match():
    rng = np.random.default_rng(0)
    pose = torch.tensor(rng.normal(size=(8, 4)))
    scale = torch.tensor(math.log(1 / 0.1))
    matched = info_nce(pose * 3.0, pose, scale)  # same directions: aligned
    shuffled = info_nce(pose.roll(1, dims=0), pose, scale)
    assert float(matched) < float(shuffled)


def test_the_temperature_starts_at_0_02_and_is_learnable():
    config = emg_config(8, 500.0, "tiny")
    embedder = EmgEmbedder(SignalEncoder(config), output_dim=12)
    assert embedder.temperature == pytest.approx(INITIAL_TEMPERATURE)
    assert embedder.log_scale.requires_grad


def test_channel_rotation_moves_each_channel_to_the_next_electrode():
    emg = torch.arange(8.0).repeat(2, 3, 1)  # (2 windows, 3 steps, 8 channels)
    rotated = rotate_channels(emg, torch.tensor([1, -2]))
    assert rotated[0, 0].tolist() == [7, 0, 1, 2, 3, 4, 5, 6]
    assert rotated[1, 2].tolist() == [2, 3, 4, 5, 6, 7, 0, 1]
    full_turn = rotate_channels(emg, torch.tensor([8, -8]))
    assert torch.equal(full_turn, emg)


def test_random_rotation_stays_within_the_allowed_shift():
    emg = torch.arange(8.0).repeat(500, 1, 1)
    rotated = random_channel_rotation(emg, 1, torch.Generator().manual_seed(0))
    shifts = set(((rotated[:, 0, 0] * -1) % 8).long().tolist())  # where ch0 came from
    assert shifts == {0, 1, 7}  # -1, 0, +1 electrodes, all of them drawn
    unchanged = random_channel_rotation(emg, 0, torch.Generator())
    assert torch.equal(unchanged, emg)


def tiny_pairs(count=24, seed=0):
    """EMG whose channel amplitudes encode the pose's level (a learnable link)."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(-1, 1, count)
    emg = rng.normal(size=(count, 12 * 83, 8)) * (1 + level[:, None, None])
    pose = np.repeat(level[:, None, None], 60, axis=1) * np.ones((1, 1, 20))
    return emg.astype(np.float32), pose.astype(np.float32)


def test_alignment_trains_the_emg_side_and_leaves_the_pose_encoder_frozen():
    emg, pose = tiny_pairs()
    emg_encoder = SignalEncoder(emg_config(8, 500.0, "tiny"))
    pose_encoder = SignalEncoder(pose_config(20, 30.0, "tiny"))
    pose_before = [p.detach().clone() for p in pose_encoder.parameters()]
    emg_before = [p.detach().clone() for p in emg_encoder.parameters()]
    optim = OptimConfig(epochs=6, batch_size=8, learning_rate=3e-3, restart_epochs=6)
    result = align(emg_encoder, pose_encoder, emg, pose, optim)
    assert result.epoch_losses[-1] < result.epoch_losses[0]
    for before, after in zip(pose_before, pose_encoder.parameters(), strict=True):
        assert torch.equal(before, after)
    changed = [
        not torch.equal(b, a)
        for b, a in zip(emg_before, result.embedder.encoder.parameters(), strict=True)
    ]
    assert all(changed)


def test_the_frozen_ablation_trains_only_the_head():
    emg, pose = tiny_pairs(count=8)
    emg_encoder = SignalEncoder(emg_config(8, 500.0, "tiny"))
    before = [p.detach().clone() for p in emg_encoder.parameters()]
    optim = OptimConfig(epochs=1, batch_size=4, learning_rate=1e-2)
    pose_encoder = SignalEncoder(pose_config(20, 30.0, "tiny"))
    torch.manual_seed(0)  # align's own seed: the head starts as it will there
    head_start = EmgEmbedder(emg_encoder, 16).head.weight.detach().clone()
    result = align(emg_encoder, pose_encoder, emg, pose, optim, train_encoder=False)
    for b, a in zip(before, result.embedder.encoder.parameters(), strict=True):
        assert torch.equal(b, a)
    assert not torch.equal(head_start, result.embedder.head.weight)
