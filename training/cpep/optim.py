"""The minibatch loop every CPEP stage shares: AdamW with cosine annealing and warm
restarts, as in the seed (its lr 1e-4 and batch 256 are for 100 epochs on 370 h of
data; the benchmark's smaller runs pass their own)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import torch


@dataclass
class OptimConfig:
    epochs: int = 100
    batch_size: int = 256
    learning_rate: float = 1e-4
    weight_decay: float = 1e-5
    restart_epochs: int = 100  # cosine period, in epochs (warm restarts after it)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.restart_epochs < 1:
            raise ValueError(
                f"epochs ({self.epochs}), batch_size ({self.batch_size}) and "
                f"restart_epochs ({self.restart_epochs}) must be at least 1"
            )
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")

    def as_dict(self) -> dict:
        return asdict(self)


def train_minibatches(
    parameters: Iterable[torch.nn.Parameter],
    num_items: int,
    batch_loss: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    config: OptimConfig,
    label: str = "",
) -> list[float]:
    """Minimises `batch_loss(item_indexes, generator)` over shuffled minibatches of
    `num_items`; returns the mean loss of each epoch. Progress goes to stderr."""
    if num_items < 2:
        raise ValueError(
            f"{label or 'training'}: need at least 2 windows, got {num_items}"
        )
    parameters = [p for p in parameters if p.requires_grad]
    optimizer = torch.optim.AdamW(
        parameters, lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps_per_epoch = -(-num_items // config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=config.restart_epochs * steps_per_epoch
    )
    generator = torch.Generator().manual_seed(config.seed)
    epoch_losses = []
    for epoch in range(config.epochs):
        order = torch.randperm(num_items, generator=generator)
        losses = []
        for batch in order.split(config.batch_size):
            if len(batch) < 2:  # a contrastive batch needs a negative
                continue
            loss = batch_loss(batch, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
        epoch_losses.append(sum(losses) / max(len(losses), 1))
        if label and (epoch + 1) % max(1, config.epochs // 5) == 0:
            print(
                f"{label}: epoch {epoch + 1} loss {epoch_losses[-1]:.4f}",
                file=sys.stderr,
            )
    return epoch_losses
