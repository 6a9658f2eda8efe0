"""What the benchmark commands share (bench_ingest, bench_live, bench_load): the
server's child processes, fleets of real agents on simulated armbands in child
processes, and websocket viewers of the live hand page.

Agents and viewers run in forked processes: each agent is a laptop and each viewer
a browser tab in real life, and one Python process cannot be a hundred of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import websockets
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client

from recorder.agent import Agent, AgentConfig, parse_server_urls
from webapp.accounts.models import AgentToken
from webapp.recordings.models import RecordingSession, Subject

# Real agents spool to their own laptops' disks; here a hundred of them would queue
# their fsyncs on the server's disk and measure that instead, so they use memory.
SPOOL_PARENT = "/dev/shm" if os.path.isdir("/dev/shm") else None
# A viewer watches until its session's agent stops. A viewer of a session whose
# agent already stopped (or that misses the news) gives up this long after the run.
VIEWER_GRACE_S = 60.0


# ------------------------------------------------------------------ processes


def start_process(
    name: str, command: list[str], env: dict | None = None
) -> subprocess.Popen:
    """A child in its own process group, its output in $TMPDIR/<name>.log."""
    log = open(Path(tempfile.gettempdir()) / f"{name}.log", "wb")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)  # fmt: skip


def stop_processes(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    for child in children:
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ sessions


def prepare_sessions(user, count: int, label: str) -> tuple[list[str], list[int]]:
    """One agent token and one session, already recording, per agent."""
    subject, _ = Subject.objects.get_or_create(owner=user, name="bench")
    secrets, session_ids = [], []
    for number in range(count):
        token, secret = AgentToken.issue(user, f"{label} agent {number}")
        session = RecordingSession.objects.create(
            owner=user, subject=subject, agent=token, status="recording",
            protocol_name=label,
        )  # fmt: skip
        secrets.append(secret)
        session_ids.append(session.pk)
    return secrets, session_ids


def wait_for_files(session_ids: list[int], timeout_s: float) -> dict:
    """Once every session is assembled (or the time is up): how many are complete
    and the samples their files hold."""
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


def login_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def bench_user(username: str):
    user, _ = get_user_model().objects.get_or_create(username=username)
    return user


# ------------------------------------------------------------------ agents


def run_fleets(
    server_url: str, secrets: list[str], seconds: float, chunk_s: float, processes: int
) -> dict:
    """Run the agents spread over `processes` child processes; merge their reports."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

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
    return merge_fleet_reports(reports)


def merge_fleet_reports(reports: list[dict]) -> dict:
    return {
        "samples_recorded": sum(r["samples_recorded"] for r in reports),
        "chunks_sent": sum(r["chunks_sent"] for r in reports),
        "ack_ms": np.concatenate([r["ack_ms"] for r in reports]),
        "cpu_s": sum(r["cpu_s"] for r in reports),
        "server_errors": sum(r["server_errors"] for r in reports),
        "reconnects": sum(r["reconnects"] for r in reports),
        "error_examples": sorted({e for r in reports for e in r["error_examples"]}),
    }


class AgentLogCounter(logging.Handler):
    """Counts what the agents log: errors the server sent, and lost connections."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.errors = 0
        self.reconnects = 0
        self.examples: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.errors += 1
            if len(self.examples) < 5:
                self.examples.add(record.getMessage()[:200])
        elif "cannot reach the server" in record.msg:
            self.reconnects += 1


def run_fleet(
    server_url: str, numbered_secrets: list, seconds: float, chunk_s: float
) -> dict:
    """One process's agents, each on its own simulated armband; returns their stats.

    `server_url` may list several servers (commas): agent i starts on the i-th, so
    the agents spread over them, and moves on to the next after a lost connection.
    """
    urls = parse_server_urls(server_url)
    spool_root = Path(tempfile.mkdtemp(prefix="bench-spool-", dir=SPOOL_PARENT))
    counter = AgentLogCounter()
    logging.getLogger("recorder").addHandler(counter)
    fleet = [
        Agent(
            AgentConfig(
                server_url=",".join(urls[i % len(urls) :] + urls[: i % len(urls)]),
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
        "ack_ms": np.concatenate(
            [np.fromiter(a.link.ack_ms, float) for a in fleet] or [np.array([])]
        ),
        "cpu_s": time.process_time(),
        "server_errors": counter.errors,
        "reconnects": counter.reconnects,
        "error_examples": sorted(counter.examples),
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


def percentile_ms(values_ms, q: float) -> float | None:
    values_ms = np.asarray(values_ms)
    return round(float(np.percentile(values_ms, q)), 1) if len(values_ms) else None


# ------------------------------------------------------------------ viewers


def watch_sessions(views: list[tuple[str, int]], cookie, run_id, seconds) -> list:
    """Viewers in this process: (server http url, session id) each; returns each
    viewer's record (see `watch`)."""
    return asyncio.run(_watch_all(views, cookie, run_id, seconds))


async def _watch_all(views, cookie, run_id, seconds):
    return await asyncio.gather(
        *[watch_hand(url, session_id, cookie, run_id, seconds)
          for url, session_id in views]
    )  # fmt: skip


async def watch_hand(http_url, session_id, cookie, run_id, seconds) -> dict:
    """A logged-in tab on a session's live hand page; a failure is its error."""
    url = http_url.replace("http://", "ws://") + f"/ws/sessions/{session_id}/hand/"
    headers = {"Cookie": f"sessionid={cookie}", "Origin": http_url}
    try:
        return await watch(url, headers, run_id, seconds)
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        return {"received": [], "errors": [f"viewer: {type(exc).__name__}: {exc}"]}


async def watch(url: str, headers: dict, run_id: int, seconds: float) -> dict:
    """One viewer, until the session's agent stops: (receive time, pose time) of
    every pose, and any error. (It used to stop after 3 s without a pose, which
    under load cut short the viewers of a worker that was behind.)"""
    received = []  # (receive unix s, pose t)
    errors = []
    deadline_s = time.monotonic() + seconds + VIEWER_GRACE_S
    async with websockets.connect(url, additional_headers=headers) as socket:
        await socket.send(json.dumps({"type": "display", "rate_hz": 60}))
        await socket.send(json.dumps({"type": "select", "run": run_id}))
        while (left_s := deadline_s - time.monotonic()) > 0:
            try:
                message = json.loads(await asyncio.wait_for(socket.recv(), left_s))
            except TimeoutError:
                break
            if message["type"] == "pose":
                received.append((time.time(), message["t"]))
            elif message["type"] == "error":
                errors.append(message["message"])
            elif message["type"] == "agent" and message["state"] == "stopped":
                break
    return {"received": received, "errors": errors}


def wait_for_inference(http_url, session_ids, cookie, run_id, timeout_s) -> None:
    """Until every inference shard has loaded the model once: a worker imports torch
    on its first message, which takes seconds that a short run must not count."""
    shards = {}
    for session_id in session_ids:
        shards.setdefault(session_id % settings.INFERENCE_SHARDS, session_id)

    async def every_shard():
        loads = [_model_loaded(http_url, s, cookie, run_id) for s in shards.values()]
        await asyncio.wait_for(asyncio.gather(*loads), timeout_s)

    asyncio.run(every_shard())


async def _model_loaded(http_url, session_id, cookie, run_id) -> None:
    url = http_url.replace("http://", "ws://") + f"/ws/sessions/{session_id}/hand/"
    headers = {"Cookie": f"sessionid={cookie}", "Origin": http_url}
    async with websockets.connect(url, additional_headers=headers) as socket:
        await socket.send(json.dumps({"type": "select", "run": run_id}))
        while not _worker_answered(json.loads(await socket.recv())):
            pass


def _worker_answered(message: dict) -> bool:
    """The model's description, or the worker's refusal (not the tab's complaint
    that no worker answered yet)."""
    if message["type"] == "error":
        return message.get("code") != "no_worker"
    return message["type"] == "model"


def pose_latencies_ms(views: list[dict], warmup_s: float) -> tuple[np.ndarray, list]:
    """Every viewer's pose latencies after its warm-up, and each viewer's rate
    (poses per second), for viewers that got enough poses to measure."""
    latencies_ms, rates = [], []
    for view in views:
        received = np.array(view["received"]).reshape(-1, 2)
        if not len(received):
            continue
        measured = received[received[:, 0] >= received[0, 0] + warmup_s]
        if len(measured) < 2:
            continue
        latencies_ms.append(1000 * (measured[:, 0] - measured[:, 1]))
        rates.append(len(measured) / (measured[-1, 0] - measured[0, 0]))
    if not latencies_ms:
        return np.array([]), rates
    return np.concatenate(latencies_ms), rates
