import math

import pytest
import torch

from training.augment import augment_batch, rotate_channels, scale_amplitude


def ramp_emg(batch: int = 3, samples: int = 5, channels: int = 8) -> torch.Tensor:
    """emg[b, t, c] = 100 b + 10 t + c: every value says where it came from."""
    b, t, c = torch.meshgrid(
        torch.arange(batch), torch.arange(samples), torch.arange(channels),
        indexing="ij",
    )  # fmt: skip
    return (100 * b + 10 * t + c).float()


def test_rotating_by_one_moves_each_electrode_to_its_neighbour():
    emg = ramp_emg()
    rotated = rotate_channels(emg, torch.tensor([1, -1, 0]))
    assert rotated[0, 0].tolist() == [7, 0, 1, 2, 3, 4, 5, 6]
    assert rotated[1, 0].tolist() == [101, 102, 103, 104, 105, 106, 107, 100]
    assert torch.equal(rotated[2], emg[2])
    assert torch.equal(rotated[0], torch.roll(emg[0], 1, dims=-1))


def test_a_full_turn_is_no_rotation():
    emg = ramp_emg(batch=1)
    assert torch.equal(rotate_channels(emg, torch.tensor([8])), emg)


def test_gains_scale_windows_or_single_channels():
    emg = torch.ones(2, 4, 3)
    per_window = scale_amplitude(emg, torch.tensor([2.0, 0.5]))
    assert per_window[0].eq(2.0).all() and per_window[1].eq(0.5).all()
    per_channel = scale_amplitude(emg, torch.tensor([[1.0, 2.0, 3.0], [4, 5, 6]]))
    assert per_channel[1, 3].tolist() == [4.0, 5.0, 6.0]


def test_augmentation_is_deterministic_given_the_generator():
    emg = torch.randn(16, 50, 8)
    first = augment_batch(emg, torch.Generator().manual_seed(7))
    again = augment_batch(emg, torch.Generator().manual_seed(7))
    other = augment_batch(emg, torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert first.shape == emg.shape and first.dtype == emg.dtype


def test_augmentation_rotates_within_max_shift_and_gains_within_range():
    emg = ramp_emg(batch=64, samples=2) + 1.0  # no zeros to divide by
    augmented = augment_batch(emg, torch.Generator().manual_seed(0), max_shift=1)
    for window, original in zip(augmented, emg, strict=True):
        shifts = [
            shift
            for shift in (-1, 0, 1)
            if torch.allclose(
                window / torch.roll(original, shift, -1),
                (window / torch.roll(original, shift, -1))[0].expand_as(window),
            )
        ]
        assert shifts, "not a rotation by at most one electrode"
        gains = window[0] / torch.roll(original, shifts[0], -1)[0]
        assert gains.min() >= 0.8 - 1e-6 and gains.max() <= 1.25 + 1e-6


def test_no_shift_and_unit_gain_change_nothing():
    emg = torch.randn(4, 10, 8)
    same = augment_batch(emg, torch.Generator(), max_shift=0, gain_range=(1.0, 1.0))
    torch.testing.assert_close(same, emg)


def test_gains_are_log_uniform_around_one():
    emg = torch.ones(4000, 1, 8)
    gains = augment_batch(emg, torch.Generator().manual_seed(1), max_shift=0)
    log_gains = torch.log(gains)
    assert log_gains.mean().item() == pytest.approx(0.0, abs=0.01)
    assert log_gains.max().item() <= math.log(1.25) + 1e-6
