"""python manage.py bench_live --streams N --seconds S [--model NAME | --checkpoint F]

Measures the live hand through the real server: starts daphne (and, when REDIS_URL
is set, one `runworker inference-<k>` process per shard; the embedded mode runs
inference inside daphne), N simulated agents recording into N sessions, and N
websocket viewers, one per session, each watching the session's hand. Viewers note
receive time minus each pose's `t` (the agent-clock time of the sample it ends
at; agents and viewers share this machine's clock). Prints one final JSON line:
  {"streams", "seconds", "e2e_ms_p50", "e2e_ms_p99", "poses_per_s", "model", ...}
poses_per_s is per stream. Without --model or --checkpoint it trains a tiny tcn
(seconds). Uses this settings' database (embedded SQLite by default).
"""

import json
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from recorder.agent import AgentConfig
from training.checkpoint import CheckpointError
from webapp.benchmarking import (
    login_cookie,
    pose_latencies_ms,
    prepare_sessions,
    run_fleet,
    start_process,
    stop_processes,
    watch_sessions,
)
from webapp.live.checkpoints import register_checkpoint, train_tiny_model
from webapp.live.groups import inference_channels
from webapp.processes import (
    free_port,
    inference_worker_command,
    server_command,
    wait_for_port,
)
from webapp.registry.models import TrainingRun

BENCH_USER = "bench-live"
WARMUP_S = 2.0  # after a viewer's first pose: model loading and the filters settling


class Command(BaseCommand):
    help = "Measure the live hand: N agents -> inference -> N viewers, end to end."

    def add_arguments(self, parser):
        parser.add_argument("--streams", type=int, default=1)
        parser.add_argument("--seconds", type=float, default=10.0)
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--model", help="the name of a complete model to use")
        source.add_argument("--checkpoint", type=Path, help="a final.pt to use")
        parser.add_argument(
            "--agent-processes", type=int, default=1, help="processes the agents use"
        )

    def handle(self, *args, streams, seconds, model, checkpoint, **options):
        if streams < 1 or seconds <= WARMUP_S + 1:
            raise CommandError(f"--streams must be ≥ 1 and --seconds > {WARMUP_S + 1}")
        call_command("migrate", interactive=False, verbosity=0)
        user, _ = get_user_model().objects.get_or_create(username=BENCH_USER)
        run = self.model_run(user, model, checkpoint)
        secrets, session_ids = prepare_sessions(user, streams, "bench live")
        port = free_port()
        children = self.start_server_and_workers(port)
        try:
            wait_for_port(port)
            views = measure(
                port, login_cookie(user), run.pk, secrets, session_ids, seconds,
                options["agent_processes"],
            )  # fmt: skip
        finally:
            stop_processes(children)
        result = summarize(views, streams, seconds, run)
        # the server asks watched agents for live chunks (recording.live)
        result["live_chunk_ms"] = AgentConfig.live_chunk_s * 1000
        self.stdout.write(json.dumps(result))

    def model_run(self, user, model: str | None, checkpoint: Path | None):
        try:
            if checkpoint is not None:
                return register_checkpoint(user, checkpoint, checkpoint.stem)
            if model is not None:
                return self.named_run(user, model)
            folder = Path(tempfile.mkdtemp(prefix="bench-live-model-"))
            self.stderr.write("training a tiny tcn for the benchmark…")
            return register_checkpoint(user, train_tiny_model(folder), "tiny tcn")
        except CheckpointError as exc:
            raise CommandError(str(exc)) from None

    def named_run(self, user, name: str):
        runs = TrainingRun.objects.filter(name=name, status="complete")
        run = runs.filter(owner=user).first() or runs.first()
        if run is None:
            raise CommandError(f"there is no complete model named {name!r}")
        if run.owner_id != user.pk:  # viewers may only pick their own models
            return register_checkpoint(user, run.checkpoint_path, name)
        return run

    def start_server_and_workers(self, port: int) -> list[subprocess.Popen]:
        commands = {"server": server_command("127.0.0.1", port)}
        if not settings.INFERENCE_IN_PROCESS:
            for channel in inference_channels():
                commands[channel] = inference_worker_command(channel)
        return [
            start_process(f"bench_live_{name}", command)
            for name, command in commands.items()
        ]


def measure(port, cookie, run_id, secrets, session_ids, seconds, processes):
    """Agents in child processes, viewers here; returns each viewer's record."""
    server_url = f"ws://127.0.0.1:{port}"
    connections.close_all()  # the forked agents must not share our DB sockets
    shares = [list(enumerate(secrets))[k::processes] for k in range(processes)]
    with ProcessPoolExecutor(processes, mp_context=get_context("fork")) as pool:
        fleets = [
            pool.submit(run_fleet, server_url, share, seconds, AgentConfig.chunk_s)
            for share in shares
        ]
        http_url = f"http://127.0.0.1:{port}"
        views = watch_sessions(
            [(http_url, sid) for sid in session_ids], cookie, run_id, seconds
        )
        for fleet in fleets:
            fleet.result()
    return views


def summarize(views: list[dict], streams: int, seconds: float, run) -> dict:
    """Latency over every viewer's poses after its warm-up; pose rate per stream."""
    latencies_ms, rates = pose_latencies_ms(views, WARMUP_S)

    def percentile(q):
        return round(float(np.percentile(latencies_ms, q)), 1) if rates else None

    errors = sorted({error for view in views for error in view["errors"]})
    return {
        "streams": streams,
        "seconds": seconds,
        "e2e_ms_p50": percentile(50),
        "e2e_ms_p99": percentile(99),
        "poses_per_s": round(float(np.mean(rates)), 1) if rates else 0.0,
        "model": f"{run.model_name} ({run})",
        "streams_with_poses": len(rates),
        "poses": int(sum(len(v["received"]) for v in views)),
        "inference": "in daphne (embedded)"
        if settings.INFERENCE_IN_PROCESS
        else f"runworker × {settings.INFERENCE_SHARDS}",
        "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".")[-1],
        "errors": errors,
    }
