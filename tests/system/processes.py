"""Real processes for system tests: the server, a Celery worker, an agent, and a TCP
proxy that can cut every connection through it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from django.conf import settings

from webapp.processes import (
    agent_command,
    free_port,
    inference_worker_command,
    server_command,
    wait_for_port,
    worker_command,
)

ROOT = Path(__file__).resolve().parents[2]


def wait_until(condition, timeout_s: float, what: str, interval_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")


def server_environment(tmp_path: Path) -> dict:
    """The environment of server and worker processes: this test's database."""
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": settings.REDIS_URL,
        "VAR_DIR": str(tmp_path / "var"),
        "CHUNK_STORE_DIR": str(settings.CHUNK_STORE_DIR),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CONN_MAX_AGE": "0",
    }


class Process:
    """A child process whose output goes to a log file, killed with its group."""

    def __init__(self, name: str, command: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.popen = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=open(self.log_path, "ab"),
            stderr=subprocess.STDOUT,
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout=20)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def start_server(port: int, env: dict, log_dir: Path) -> Process:
    command = server_command("127.0.0.1", port)
    server = Process(f"server-{port}-{time.monotonic_ns()}", command, env, log_dir)
    wait_for_port(port)
    return server


def start_worker(env: dict, log_dir: Path) -> Process:
    return Process("worker", worker_command("info"), env, log_dir)


def start_agent(
    server_url: str, secret: str, spool: Path, log_dir: Path, *device_args: str
) -> Process:
    options = ["--token", secret, "--spool", str(spool), *device_args]
    return Process(
        "agent", agent_command(server_url, *options), dict(os.environ), log_dir
    )


class CuttableProxy:
    """Forwards 127.0.0.1:listen_port to target_port; `cut()` drops every connection."""

    def __init__(self, target_port: int):
        self.listen_port = free_port()
        self.target_port = target_port
        self.writers: set[asyncio.StreamWriter] = set()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.ready.wait(5)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._pipe_client, "127.0.0.1", self.listen_port)
        )
        self.ready.set()
        self.loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    async def _pipe_client(self, reader, writer) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.close()
            return
        self.writers |= {writer, upstream_writer}
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer)
        )

    def cut(self) -> int:
        """Close every open connection; returns how many sockets were cut."""
        count = len(self.writers)

        def close_all():
            for writer in list(self.writers):
                writer.transport.abort()
            self.writers.clear()

        self.loop.call_soon_threadsafe(close_all)
        return count

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.transport.abort()


def start_inference_worker(env: dict, log_dir: Path, channel: str = "inference-0"):
    """A live-inference worker (`manage.py runworker inference-<k>`)."""
    return Process(
        f"inference-{channel}", inference_worker_command(channel), env, log_dir
    )
