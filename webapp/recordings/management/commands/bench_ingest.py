"""python manage.py bench_ingest --agents N --seconds S

Starts one daphne server and a Celery worker, then N real agents (in this process)
on simulated 8-channel 500 Hz armbands, each recording S seconds into its own session.
Prints one final JSON line:
  {"agents", "samples_sent", "samples_stored", "lost", "ack_p99_ms", ...}
samples_sent counts what the devices produced; samples_stored what the session files
hold once assembled. Uses this settings' database and broker (embedded by default).
The server fsyncs every chunk before acknowledging it, as in production; the agents'
spools live in /dev/shm (see SPOOL_PARENT).
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections

from recorder.agent import Agent, AgentConfig
from webapp.accounts.models import AgentToken
from webapp.processes import free_port, server_command, wait_for_port, worker_command
from webapp.recordings.models import RecordingSession, Subject

# Real agents spool to their own laptops' disks; here a hundred of them would queue
# their fsyncs on the server's disk and measure that instead, so they use memory.
SPOOL_PARENT = "/dev/shm" if os.path.isdir("/dev/shm") else None


class Command(BaseCommand):
    help = "Measure ingest: N simulated agents streaming into one server."

    def add_arguments(self, parser):
        parser.add_argument("--agents", type=int, default=10)
        parser.add_argument("--seconds", type=float, default=10.0)
        parser.add_argument("--port", type=int, default=0, help="default: a free port")
        parser.add_argument(
            "--agent-processes",
            type=int,
            default=2,
            help="processes the agents are spread over (each agent is "
            "one laptop in real life; one Python process can't be 100)",
        )
        parser.add_argument(
            "--chunk-ms",
            type=float,
            default=AgentConfig.chunk_s * 1000,
            help="samples per chunk, in ms of signal",
        )

    def handle(
        self, *args, agents, seconds, port, chunk_ms, agent_processes, **options
    ):
        call_command("migrate", interactive=False, verbosity=0)
        port = port or free_port()
        secrets, session_ids = self.prepare(agents)
        children = [
            self.start("server", server_command("127.0.0.1", port)),
            self.start("worker", worker_command()),
        ]
        try:
            wait_for_port(port)
            started_s, server_cpu_s = time.monotonic(), _cpu_seconds(children[0].pid)
            fleet = run_fleets(
                f"ws://127.0.0.1:{port}",
                secrets,
                seconds,
                chunk_ms / 1000,
                agent_processes,
            )
            elapsed_s = time.monotonic() - started_s
            server_cpu_s = _cpu_seconds(children[0].pid) - server_cpu_s
            stored = self.wait_for_files(session_ids, timeout_s=120 + agents)
        finally:
            for child in children:
                os.killpg(child.pid, signal.SIGTERM)
                child.wait(30)
        result = summarize(agents, fleet, stored)
        result["chunk_ms"] = chunk_ms
        result["agent_processes"] = agent_processes
        # how busy each side was while streaming (100 % = one core)
        result["server_cpu_percent"] = round(100 * server_cpu_s / elapsed_s)
        result["agents_cpu_percent"] = round(100 * fleet["cpu_s"] / elapsed_s)
        self.stdout.write(json.dumps(result))

    def prepare(self, agents: int):
        user, _ = get_user_model().objects.get_or_create(username="bench-ingest")
        subject, _ = Subject.objects.get_or_create(owner=user, name="bench")
        secrets, session_ids = [], []
        for number in range(agents):
            token, secret = AgentToken.issue(user, f"bench agent {number}")
            session = RecordingSession.objects.create(
                owner=user,
                subject=subject,
                agent=token,
                status="recording",
                protocol_name="bench",
            )
            secrets.append(secret)
            session_ids.append(session.pk)
        return secrets, session_ids

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(Path(tempfile.gettempdir()) / f"bench_ingest_{name}.log", "wb")
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_for_files(self, session_ids: list[int], timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        sessions = RecordingSession.objects.filter(pk__in=session_ids)
        while time.monotonic() < deadline:
            if not sessions.exclude(status__in=["complete", "failed"]).exists():
                break
            time.sleep(0.5)
        rows = sessions.values_list("status", "sample_count")
        return {
            "complete": sum(s == "complete" for s, _ in rows),
            "samples": sum(n for _, n in rows),
        }


def run_fleets(
    server_url: str, secrets: list[str], seconds: float, chunk_s: float, processes: int
) -> dict:
    """Run the agents spread over `processes` child processes; merge their reports."""
    connections.close_all()  # the children must not share this process's DB sockets
    shares = [list(enumerate(secrets))[k::processes] for k in range(processes)]
    with ProcessPoolExecutor(processes, mp_context=get_context("fork")) as pool:
        reports = list(
            pool.map(
                run_fleet,
                [server_url] * processes,
                shares,
                [seconds] * processes,
                [chunk_s] * processes,
            )
        )
    return {
        "samples_recorded": sum(r["samples_recorded"] for r in reports),
        "chunks_sent": sum(r["chunks_sent"] for r in reports),
        "ack_ms": np.concatenate([r["ack_ms"] for r in reports]),
        "cpu_s": sum(r["cpu_s"] for r in reports),
    }


def run_fleet(
    server_url: str, numbered_secrets: list, seconds: float, chunk_s: float
) -> dict:
    """One process's agents, each on its own simulated armband; returns their stats."""
    spool_root = Path(tempfile.mkdtemp(prefix="bench-spool-", dir=SPOOL_PARENT))
    fleet = [
        Agent(
            AgentConfig(
                server_url=server_url,
                token=secret,
                spool_dir=spool_root / str(i),
                device="simulated",
                chunk_s=chunk_s,
                device_options={"seed": i, "duration_s": seconds},
            )
        )
        for i, secret in numbered_secrets
    ]
    asyncio.run(_stream_until_closed(fleet, seconds))
    shutil.rmtree(spool_root, ignore_errors=True)
    return {
        "samples_recorded": sum(a.samples_recorded for a in fleet),
        "chunks_sent": sum(a.link.chunks_sent for a in fleet),
        "ack_ms": np.concatenate([np.fromiter(a.link.ack_ms, float) for a in fleet]),
        "cpu_s": time.process_time(),
    }


async def _stream_until_closed(fleet: list[Agent], seconds: float) -> None:
    """Each agent is sent its start on connect and ends after `seconds` of samples."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(agent.run_forever(stop)) for agent in fleet]
    started = time.monotonic()
    while time.monotonic() - started < seconds + 60:
        await asyncio.sleep(0.5)
        if all(a.link.chunks_sent and not a.sessions for a in fleet):
            break
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


def summarize(agents: int, fleet: dict, stored: dict) -> dict:
    produced = fleet["samples_recorded"]
    ack_ms = fleet["ack_ms"]
    return {
        "agents": agents,
        "samples_sent": produced,
        "samples_stored": stored["samples"],
        "lost": produced - stored["samples"],
        "ack_p50_ms": round(float(np.percentile(ack_ms, 50)), 1)
        if len(ack_ms)
        else None,
        "ack_p99_ms": round(float(np.percentile(ack_ms, 99)), 1)
        if len(ack_ms)
        else None,
        "sessions_complete": stored["complete"],
        "chunks_sent": fleet["chunks_sent"],
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[
            -1
        ],
    }


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
