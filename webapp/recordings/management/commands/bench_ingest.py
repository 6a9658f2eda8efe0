"""python manage.py bench_ingest --agents N --seconds S

Starts one daphne server and a Celery worker, then N real agents (in this process)
on simulated 8-channel 500 Hz armbands, each recording S seconds into its own session.
Prints one final JSON line:
  {"agents", "samples_sent", "samples_stored", "lost", "ack_p99_ms", ...}
samples_sent counts what the devices produced; samples_stored what the session files
hold once assembled. Uses this settings' database and broker (embedded by default).
"""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from recorder.agent import Agent, AgentConfig
from webapp.accounts.models import AgentToken
from webapp.recordings.models import RecordingSession, Subject


class Command(BaseCommand):
    help = "Measure ingest: N simulated agents streaming into one server."

    def add_arguments(self, parser):
        parser.add_argument("--agents", type=int, default=10)
        parser.add_argument("--seconds", type=float, default=10.0)
        parser.add_argument("--port", type=int, default=0, help="default: a free port")

    def handle(self, *args, agents, seconds, port, **options):
        call_command("migrate", interactive=False, verbosity=0)
        port = port or _free_port()
        secrets, session_ids = self.prepare(agents)
        children = [self.start("server", [sys.executable, "-m", "daphne", "-b", "127.0.0.1",
                                          "-p", str(port), "webapp.asgi:application"]),
                    self.start("worker", [sys.executable, "-m", "celery", "-A", "webapp",
                                          "worker", "-P", "solo", "-l", "warning"])]  # fmt: skip
        try:
            _wait_for_port(port)
            fleet = asyncio.run(run_fleet(f"ws://127.0.0.1:{port}", secrets, seconds))
            stored = self.wait_for_files(session_ids, timeout_s=120 + agents)
        finally:
            for child in children:
                os.killpg(child.pid, signal.SIGTERM)
                child.wait(30)
        self.stdout.write(json.dumps(summarize(agents, fleet, stored)))

    def prepare(self, agents: int):
        user, _ = get_user_model().objects.get_or_create(username="bench-ingest")
        subject, _ = Subject.objects.get_or_create(owner=user, name="bench")
        secrets, session_ids = [], []
        for number in range(agents):
            token, secret = AgentToken.issue(user, f"bench agent {number}")
            session = RecordingSession.objects.create(
                owner=user, subject=subject, agent=token, status="recording",
                protocol_name="bench",
            )  # fmt: skip
            secrets.append(secret)
            session_ids.append(session.pk)
        return secrets, session_ids

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(Path(tempfile.gettempdir()) / f"bench_ingest_{name}.log", "wb")
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip

    def wait_for_files(self, session_ids: list[int], timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        sessions = RecordingSession.objects.filter(pk__in=session_ids)
        while time.monotonic() < deadline:
            if not sessions.exclude(status__in=["complete", "failed"]).exists():
                break
            time.sleep(0.5)
        rows = sessions.values_list("status", "sample_count")
        return {"complete": sum(s == "complete" for s, _ in rows),
                "samples": sum(n for _, n in rows)}  # fmt: skip


async def run_fleet(server_url: str, secrets: list[str], seconds: float) -> list[Agent]:
    """Run one agent per secret until every recording has been closed by the server."""
    spool_root = Path(tempfile.mkdtemp(prefix="bench-spool-"))
    fleet = [
        Agent(AgentConfig(server_url=server_url, token=secret, spool_dir=spool_root / str(i),
                          device="simulated",
                          device_options={"seed": i, "duration_s": seconds}))  # fmt: skip
        for i, secret in enumerate(secrets)
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(agent.run_forever(stop)) for agent in fleet]
    started = time.monotonic()
    # each agent is sent its start on connect; it ends after `seconds` of samples
    while time.monotonic() - started < seconds + 60:
        await asyncio.sleep(0.5)
        if all(a.link.chunks_sent and not a.sessions for a in fleet):
            break
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return fleet


def summarize(agents: int, fleet: list[Agent], stored: dict) -> dict:
    produced = sum(a.samples_recorded for a in fleet)
    ack_ms = np.concatenate([np.fromiter(a.link.ack_ms, float) for a in fleet])
    return {
        "agents": agents,
        "samples_sent": produced,
        "samples_stored": stored["samples"],
        "lost": produced - stored["samples"],
        "ack_p50_ms": round(float(np.percentile(ack_ms, 50)), 1) if len(ack_ms) else None,
        "ack_p99_ms": round(float(np.percentile(ack_ms, 99)), 1) if len(ack_ms) else None,
        "sessions_complete": stored["complete"],
        "chunks_sent": sum(a.link.chunks_sent for a in fleet),
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1],
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not come up on port {port}")
