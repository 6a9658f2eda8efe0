"""The command lines of the system's processes, and waiting for a port.

Shared by `run_embedded`, `bench_ingest`, `bench_live` and the system tests, so they
all start the server, workers and agent the way docs/deploy.md describes.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

MANAGE_PY = Path(__file__).resolve().parent.parent / "manage.py"


def server_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "daphne", "-b", host, "-p", str(port),
            "webapp.asgi:application"]  # fmt: skip


def worker_command(
    log_level: str = "warning", queues: str = "default,labeling,training"
) -> list[str]:
    """One worker for every queue (embedded); production runs one per queue.

    The prefork pool with one child: a job runs in the child, so its time limits
    are enforced and a child killed mid-job hands the job back to the broker (the
    solo pool runs jobs in the worker process itself, which allows neither)."""
    return [sys.executable, "-m", "celery", "-A", "webapp", "worker", "-P", "prefork",
            "-c", "1", "-Q", queues, "-l", log_level]  # fmt: skip


def inference_worker_command(channel: str) -> list[str]:
    """One live-inference worker (production: one per shard, inference-<k>)."""
    return [sys.executable, str(MANAGE_PY), "runworker", channel]


def agent_command(server_url: str, *options: str) -> list[str]:
    return [sys.executable, "-m", "recorder", "agent", "--server", server_url, *options]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing answered on port {port} within {timeout_s} s")
