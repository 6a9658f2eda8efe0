import numpy as np
import pytest
import torch

from training.cpep.encoders import (
    EncoderConfig,
    SignalEncoder,
    emg_config,
    patchify,
    pose_config,
)
from training.cpep.mae import (
    MaskedAutoencoder,
    gather_tokens,
    num_masked,
    pretrain_mae,
    random_mask,
)
from training.cpep.optim import OptimConfig


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread is faster than two that wait for each other on a
    busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_seeds_patches_scale_to_the_armband_and_camera_rates():
    emg = emg_config(8, 500.0)
    assert (emg.patch_steps, emg.num_tokens, emg.window_steps) == (12, 83, 996)
    pose = pose_config(20, 30.0)
    assert (pose.patch_steps, pose.num_tokens, pose.window_steps) == (3, 20, 60)
    # at the seed's own 2 kHz they are its 50-sample and 200-frame patches
    assert emg_config(16, 2000.0).patch_steps == 50
    assert pose_config(20, 2000.0).patch_steps == 200
    paper = (emg.model_dim, emg.encoder_layers, emg.decoder_layers)
    assert paper == (256, 4, 2)


def test_a_window_that_does_not_hold_whole_patches_is_refused():
    with pytest.raises(ValueError, match="not a multiple"):
        EncoderConfig(features=8, patch_steps=12, window_steps=1000)
    encoder = SignalEncoder(emg_config(8, 500.0, "tiny"))
    with pytest.raises(ValueError, match="needs 996"):
        encoder(torch.zeros(1, 500, 8))
    with pytest.raises(ValueError, match=r"\(batch, steps, 8\)"):
        encoder(torch.zeros(1, 996, 6))


@pytest.mark.parametrize("ratio, expected", [(0.5, 10), (0.25, 5), (0.75, 15)])
def test_the_mask_hides_that_share_of_tokens_per_window(ratio, expected):
    kept, masked = random_mask(4, 20, ratio, torch.Generator().manual_seed(1))
    assert num_masked(20, ratio) == expected
    assert masked.shape == (4, expected) and kept.shape == (4, 20 - expected)
    for row in range(4):
        together = sorted(kept[row].tolist() + masked[row].tolist())
        assert together == list(range(20))  # disjoint and covering
    assert not torch.equal(masked[0], masked[1])  # drawn per window


def test_bad_mask_ratios_are_refused():
    with pytest.raises(ValueError, match="mask_ratio"):
        num_masked(20, 1.0)


def test_the_encoder_sees_only_the_kept_patches():
    config = emg_config(8, 500.0, "tiny")
    model = MaskedAutoencoder(config).eval()
    signal = torch.randn(2, config.window_steps, 8)
    kept, masked = random_mask(2, config.num_tokens, 0.5, torch.Generator())
    reconstructed, target = model(signal, kept)
    assert reconstructed.shape == target.shape == (2, 83, 12 * 8)
    assert torch.equal(target, patchify(signal, config))
    # Scramble what the masked patches hold: the reconstruction cannot change.
    patches = patchify(signal, config).clone()
    noise = torch.randn_like(gather_tokens(patches, masked))
    patches.scatter_(1, masked[..., None].expand_as(noise), noise)
    scrambled = patches.reshape(2, config.window_steps, 8)
    again, _ = model(scrambled, kept)
    assert torch.allclose(again, reconstructed, atol=1e-6)


def test_pretraining_lowers_the_masked_reconstruction_error():
    # each window holds one posture: a masked patch equals the kept ones
    level = np.random.default_rng(0).normal(size=(32, 1, 20))
    windows = np.repeat(level, 30, axis=1).astype(np.float32)
    config = pose_config(20, 30.0, "tiny", window_s=1.0)
    optim = OptimConfig(epochs=20, batch_size=16, learning_rate=1e-2, restart_epochs=20)
    result = pretrain_mae(config, windows, optim)
    assert result.epoch_losses[-1] < 0.6 * result.epoch_losses[0]
    assert isinstance(result.encoder, SignalEncoder)
