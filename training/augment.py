"""EMG training augmentation for an armband: where it sits and how well it touches.

- Band placement: the electrodes sit in a ring around the forearm, so putting the
  band on rotated by one electrode spacing shifts every channel to its neighbour's
  place: a circular shift of the electrode index.
- Contact: each electrode's skin contact, hence its gain, changes between wearings.

All functions take emg (B, T, C) on any device and are deterministic given their
arguments (augment_batch: given its generator).
"""

from __future__ import annotations

import math

import torch


def rotate_channels(emg: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Circularly shift each window's electrodes: output channel (c + shift) % C is
    input channel c, as `torch.roll`. emg (B, T, C), shifts (B,) int."""
    channels = emg.shape[-1]
    shifts = shifts.to(emg.device, torch.long)
    source = (torch.arange(channels, device=emg.device) - shifts[:, None]) % channels
    return emg.gather(2, source[:, None, :].expand_as(emg))  # (B, T, C)


def scale_amplitude(emg: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """Multiply each window (gains (B,)) or each window's channel (gains (B, C))."""
    gains = gains.to(emg.device, emg.dtype)
    if gains.dim() == 1:
        return emg * gains[:, None, None]
    return emg * gains[:, None, :]


def augment_batch(
    emg: torch.Tensor,
    generator: torch.Generator,
    max_shift: int = 1,
    gain_range: tuple[float, float] = (0.8, 1.25),
) -> torch.Tensor:
    """A random band rotation of up to ±max_shift electrodes per window, then a
    random gain per window and channel, log-uniform in gain_range. `generator` is
    a CPU generator; the draws happen on the CPU, so the result is the same on any
    device."""
    batch, _, channels = emg.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (batch,), generator=generator)
    low, high = math.log(gain_range[0]), math.log(gain_range[1])
    log_gains = low + (high - low) * torch.rand(batch, channels, generator=generator)
    return scale_amplitude(rotate_channels(emg, shifts), torch.exp(log_gains))
