"""Training on several GPUs of one machine: torch DistributedDataParallel, one
process per GPU, spawned by `train_distributed`.

It gives what `trainer.train` gives on one device, up to float rounding:
- every rank draws the same global batch (the same shuffle generator) and the same
  augmentation, then computes the loss on its own slice of that batch;
- each slice's loss is weighted by its share of the batch, so DDP's gradient average
  is the gradient of the global batch's mean loss, and Adam takes the same step;
- the initial weights come from the same seed on every rank;
- rank 0 writes last.pt / best.pt / final.pt, reports each epoch, and decides when to
  stop; the other ranks follow its decision, so no rank waits on a missing peer.
Batch norm becomes SyncBatchNorm on GPUs, so its statistics are the global batch's
(PyTorch syncs it on GPUs only: on CPUs, with gloo, as in the tests, use a model
without batch norm). Dropout masks differ from a one-process run, so models with
dropout match it only statistically.
"""

from __future__ import annotations

import multiprocessing as python_multiprocessing
import os
import queue
import socket
import time
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from multiprocessing.process import AuthenticationString
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as multiprocessing
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from training.augment import augment_batch
from training.checkpoint import save_checkpoint
from training.tracking import model_outputs
from training.trainer import (
    BEST,
    LAST,
    Progress,
    RunState,
    ShouldStop,
    TrainConfig,
    TrainingCancelled,
    TrainResult,
    finish,
    loss_terms,
    run_epoch,
    stop_reason,
    to_device,
)

STOP_REASONS = ("completed", "early_stopping", "time_budget")


def train_distributed(
    config: TrainConfig,
    train_sessions,
    validation_sessions,
    out_dir: str | Path,
    world_size: int,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    backend: str | None = None,
) -> TrainResult:
    """`trainer.train` on `world_size` processes: NCCL, one GPU each, when CUDA has
    that many GPUs; else gloo on the CPU (tests). `progress` and `should_stop` run
    in this process. Raises what the training raised (DataError, CheckpointError,
    TrainingCancelled, ...)."""
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    _check_world(world_size, backend)
    if not train_sessions or not validation_sessions:
        raise ValueError("training needs at least one training and one validation "
                         "session")  # fmt: skip
    context = multiprocessing.get_context("spawn")
    events, stop = context.Queue(), context.Event()
    rendezvous = f"tcp://127.0.0.1:{_free_port()}"
    with _allowed_to_have_children():
        ranks = multiprocessing.start_processes(
            _rank_main,
            args=(world_size, backend, rendezvous, config, list(train_sessions),
                  list(validation_sessions), Path(out_dir), events, stop),
            nprocs=world_size, join=False, start_method="spawn",
        )  # fmt: skip
    try:
        return _follow(ranks, events, stop, progress, should_stop)
    finally:
        _end(ranks)


@contextmanager
def _allowed_to_have_children():
    """Celery's prefork pool (billiard) runs a job in a daemonic process, and
    multiprocessing refuses to start children there (they could outlive it). Ours
    cannot: `_end` stops them before train_distributed returns, and each rank stops
    by itself at its next batch if its parent dies. Billiard's authkey, too, is
    one that only billiard may hand to a child."""
    process = python_multiprocessing.current_process()
    saved = dict(process._config)
    process._config["daemon"] = False
    process._config["authkey"] = AuthenticationString(bytes(process.authkey))
    try:
        yield
    finally:
        process._config.update(saved)


def _end(ranks) -> None:
    """Stop ranks still running (this process was interrupted: a time limit)."""
    for process in ranks.processes:
        if process.is_alive():
            process.terminate()
    for process in ranks.processes:
        process.join(10)


def _check_world(world_size: int, backend: str) -> None:
    if world_size < 2:
        raise ValueError(f"distributed training needs 2 or more processes, not "
                         f"{world_size}; use training.trainer.train")  # fmt: skip
    gpus = torch.cuda.device_count()
    if backend == "nccl" and world_size > gpus:
        raise ValueError(f"{world_size} processes asked for, but this machine has "
                         f"{gpus} GPUs")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _follow(ranks, events, stop, progress, should_stop) -> TrainResult:
    """Relay rank 0's epochs to `progress` and `should_stop` to the ranks until
    every rank has ended; then the result, or rank 0's exception."""
    outcome: dict = {}
    while True:
        if should_stop and should_stop():
            stop.set()
        _relay(events, outcome, progress, wait_s=0.5)
        try:
            ended = ranks.join(timeout=0)
        except Exception:  # a rank failed; the others were stopped by join
            _relay(events, outcome, progress, wait_s=1.0)
            if "error" in outcome:
                raise outcome["error"] from None
            raise
        if ended:
            _relay(events, outcome, progress, wait_s=1.0)
            if "error" in outcome:
                raise outcome["error"]
            return outcome["result"]


def _relay(events, outcome: dict, progress, wait_s: float) -> None:
    """Handle every event that arrives within `wait_s`."""
    deadline = time.monotonic() + wait_s
    while (left_s := deadline - time.monotonic()) > 0:
        try:
            kind, *payload = events.get(timeout=left_s)
        except queue.Empty:
            return
        if kind == "epoch" and progress:
            progress(*payload)
        elif kind in ("result", "error"):
            outcome[kind] = payload[0]


def _rank_main(rank: int, world_size: int, backend: str, rendezvous: str,
               config, train_sessions, validation_sessions, out_dir: Path, events,
               stop):  # fmt: skip
    """One rank's whole run (a spawned process)."""
    parent_pid = os.getppid()
    stop_asked = lambda: stop.is_set() or os.getppid() != parent_pid  # noqa: E731
    dist.init_process_group(
        backend, init_method=rendezvous, rank=rank, world_size=world_size
    )
    try:
        result = _train_rank(
            rank, world_size, config, train_sessions, validation_sessions, out_dir,
            events, stop_asked,
        )  # fmt: skip
        if rank == 0:
            events.put(("result", result))
    except Exception as exc:
        if rank == 0:
            events.put(("error", exc))
        raise
    finally:
        dist.destroy_process_group()


def _train_rank(rank, world_size, config, train_sessions, validation_sessions,
                out_dir: Path, events, should_stop) -> TrainResult | None:  # fmt: skip
    """`trainer.train`'s loop; only rank 0 writes, reports and returns a result."""
    run = _rank_run(rank, world_size, config, train_sessions, validation_sessions)
    model = DistributedDataParallel(
        run.model, device_ids=[rank] if run.device.type == "cuda" else None
    )
    train_pass = partial(_train_slice, model=model, rank=rank, world_size=world_size)
    done = run.resume_from(out_dir / LAST) if (out_dir / LAST).exists() else 0
    stopped, started = "completed", time.monotonic()
    for epoch in range(done + 1, config.epochs + 1):
        metrics = run_epoch(run, epoch, should_stop, train_pass=train_pass)
        if rank == 0:
            _save_epoch(run, out_dir, epoch, metrics)
            events.put(("epoch", epoch, metrics))
        stopped = _agreed_stop_reason(run, config, started)
        if stopped != "completed":
            break
    dist.barrier()  # rank 0's best.pt is written
    return finish(run, out_dir, stopped) if rank == 0 else None


def _rank_run(
    rank, world_size, config, train_sessions, validation_sessions
) -> RunState:
    if dist.get_backend() == "nccl":
        torch.cuda.set_device(rank)
        run = RunState(replace(config, device=f"cuda:{rank}"), train_sessions,
                   validation_sessions)  # fmt: skip
        run.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(run.model)
        return run
    # the ranks share the machine's cores
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    return RunState(replace(config, device="cpu"), train_sessions, validation_sessions)


def _save_epoch(run: RunState, out_dir: Path, epoch: int, metrics: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out_dir / LAST, run.contents(epoch))
    if metrics["improved"]:
        save_checkpoint(out_dir / BEST, run.contents(epoch))


def _agreed_stop_reason(run: RunState, config: TrainConfig, started: float) -> str:
    """Rank 0's reason to stop (its clock decides the time budget), on every rank."""
    reason = torch.tensor([STOP_REASONS.index(stop_reason(run, config, started))])
    dist.broadcast(reason, src=0)
    return STOP_REASONS[int(reason)]


def _agreed_cancel(should_stop: ShouldStop) -> bool:
    """Rank 0's should_stop(), on every rank, so all stop at the same batch."""
    flag = torch.tensor([int(dist.get_rank() == 0 and should_stop())])
    dist.broadcast(flag, src=0)
    return bool(flag)


def _train_slice(run: RunState, epoch: int, should_stop: ShouldStop, *, model,
                 rank: int, world_size: int):  # fmt: skip
    """The trainer's pass over the training windows, each batch split over ranks.
    Returns (mean loss, mean MPJPE in mm, windows) of the whole epoch."""
    run.model.train()
    generator = run.epoch_generator(epoch)
    loader = DataLoader(
        run.train_data, batch_size=run.config.batch_size, shuffle=True,
        generator=generator,
    )  # fmt: skip
    sums = torch.zeros(3, dtype=torch.float64)  # loss, MPJPE, windows
    for batch in loader:
        if _agreed_cancel(should_stop):
            raise TrainingCancelled(f"cancelled during epoch {epoch}")
        if run.augment:  # the whole batch, so the draws are one process's draws
            batch["emg"] = augment_batch(batch["emg"], generator)
        part, share = _slice(batch, rank, world_size)
        loss, mpjpe = _step(run, model, to_device(part, run.device), share)
        count = len(part["emg"]) * (share > 0)
        sums += torch.tensor([loss * count, mpjpe * count, count], dtype=sums.dtype)
    dist.all_reduce(sums)
    return float(sums[0] / sums[2]), float(sums[1] / sums[2]), int(sums[2])


def _slice(batch: dict, rank: int, world_size: int) -> tuple[dict, float]:
    """This rank's contiguous part of the batch and its share of the windows. A
    rank left without windows (a short last batch) still runs one window with
    share 0, because every rank must join each gradient average."""
    windows = len(batch["emg"])
    start, end = rank * windows // world_size, (rank + 1) * windows // world_size
    share = (end - start) / windows
    if end == start:
        start, end = 0, 1
    part = {k: v[start:end] if torch.is_tensor(v) else v for k, v in batch.items()}
    return part, share


def _step(run: RunState, model, part: dict, share: float) -> tuple[float, float]:
    run.optimizer.zero_grad(set_to_none=True)
    with torch.autocast(
        run.device.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None
    ):
        outputs = model_outputs(model, part)
    loss, mpjpe = loss_terms(outputs, part, run.config.angle_loss_mm_per_rad)
    # DDP averages the ranks' gradients: scaled by share * ranks, the average is
    # the gradient of the mean loss over the whole batch
    run.scaler.scale(loss * share * dist.get_world_size()).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return float(loss.detach()), float(mpjpe.detach())
