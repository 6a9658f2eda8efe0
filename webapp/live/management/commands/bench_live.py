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

import asyncio
import json
import os
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import websockets
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.test import Client

from recorder.agent import AgentConfig
from training.checkpoint import CheckpointError
from webapp.accounts.models import AgentToken
from webapp.live.checkpoints import register_checkpoint, train_tiny_model
from webapp.live.groups import inference_channels
from webapp.processes import (
    free_port,
    inference_worker_command,
    server_command,
    wait_for_port,
)
from webapp.recordings.management.commands.bench_ingest import run_fleet
from webapp.recordings.models import RecordingSession, Subject
from webapp.registry.models import TrainingRun

BENCH_USER = "bench-live"
WARMUP_S = 2.0  # after a viewer's first pose: model loading and the filters settling
QUIET_S = 3.0  # a viewer stops after this long without a pose (its agent finished)


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
        secrets, session_ids = prepare_sessions(user, streams)
        port = free_port()
        children = self.start_server_and_workers(port)
        try:
            wait_for_port(port)
            views = measure(
                port, login_cookie(user), run.pk, secrets, session_ids, seconds,
                options["agent_processes"],
            )  # fmt: skip
        finally:
            for child in children:
                os.killpg(child.pid, signal.SIGTERM)
                child.wait(30)
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
        return [self.start(name, command) for name, command in commands.items()]

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(Path(tempfile.gettempdir()) / f"bench_live_{name}.log", "wb")
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def prepare_sessions(user, streams: int) -> tuple[list[str], list[int]]:
    """One agent token and one recording session per stream."""
    subject, _ = Subject.objects.get_or_create(owner=user, name="bench")
    secrets, session_ids = [], []
    for number in range(streams):
        token, secret = AgentToken.issue(user, f"bench live agent {number}")
        session = RecordingSession.objects.create(
            owner=user, subject=subject, agent=token, status="recording",
            protocol_name="bench live",
        )  # fmt: skip
        secrets.append(secret)
        session_ids.append(session.pk)
    return secrets, session_ids


def login_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


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
        views = asyncio.run(
            watch_all(server_url, port, cookie, run_id, session_ids, seconds)
        )
        for fleet in fleets:
            fleet.result()
    return views


async def watch_all(server_url, port, cookie, run_id, session_ids, seconds):
    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    return await asyncio.gather(
        *[
            watch(f"{server_url}/ws/sessions/{sid}/hand/", headers, run_id, seconds)
            for sid in session_ids
        ]
    )


async def watch(url: str, headers: dict, run_id: int, seconds: float) -> dict:
    """One viewer: (receive time, pose time) of every pose, and any error."""
    received = []  # (receive unix s, pose t)
    errors = []
    deadline_s = time.monotonic() + seconds + 60
    async with websockets.connect(url, additional_headers=headers) as socket:
        await socket.send(json.dumps({"type": "display", "rate_hz": 60}))
        await socket.send(json.dumps({"type": "select", "run": run_id}))
        while time.monotonic() < deadline_s:
            quiet_s = QUIET_S if received else deadline_s - time.monotonic()
            try:
                message = json.loads(await asyncio.wait_for(socket.recv(), quiet_s))
            except TimeoutError:
                break
            if message["type"] == "pose":
                received.append((time.time(), message["t"]))
            elif message["type"] == "error":
                errors.append(message["message"])
    return {"received": received, "errors": errors}


def summarize(views: list[dict], streams: int, seconds: float, run) -> dict:
    """Latency over every viewer's poses after its warm-up; pose rate per stream."""
    latencies_ms, rates = [], []
    for view in views:
        received = np.array(view["received"]).reshape(-1, 2)
        if not len(received):
            continue
        measured = received[received[:, 0] >= received[0, 0] + WARMUP_S]
        if len(measured) < 2:
            continue
        latencies_ms.append(1000 * (measured[:, 0] - measured[:, 1]))
        rates.append(len(measured) / (measured[-1, 0] - measured[0, 0]))
    latencies_ms = np.concatenate(latencies_ms) if latencies_ms else np.array([])

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
