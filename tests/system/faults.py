"""What the fault tests need besides processes.py: private Redis and PostgreSQL
instances they may kill and restart (never the shared ones other test runs use), a
person's browser talking HTTP to a daphne process, and what a simulated armband
produced, to compare the stored session file with."""

from __future__ import annotations

import hashlib
import http.cookiejar
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import psycopg

from recorder.devices.simulated import SimulatedArmband
from tests.needs import missing
from tests.system.processes import ROOT
from webapp.processes import free_port, wait_for_port

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
SAMPLING_RATE_HZ = 500


# ------------------------------------------------------------------ the armband


def device_emg(seed: int, samples: int) -> np.ndarray:
    """The first `samples` EMG samples the simulated armband with `seed` produces
    (they do not depend on how it is read, so this is what the agent streamed)."""
    device = SimulatedArmband(
        seed=seed, realtime=False, duration_s=samples / SAMPLING_RATE_HZ + 1
    )
    device.start()
    chunks, count = [], 0
    while count < samples and len(chunk := device.read()) > 0:
        chunks.append(chunk.emg)
        count += len(chunk.emg)
    return np.concatenate(chunks)[:samples]


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# ------------------------------------------------------------------ Redis


class PrivateRedis:
    """A redis-server of this test alone, without persistence: a restart loses
    everything in it (queued jobs, channel groups), the hardest case."""

    def __init__(self, folder: Path):
        if shutil.which("redis-server") is None:
            missing("needs redis-server on the PATH")
        self.port = free_port()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no",
                   "--dir", str(self.folder)]  # fmt: skip
        log = open(self.folder / "redis.log", "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, timeout_s=20)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


# ------------------------------------------------------------------ PostgreSQL


class PrivatePostgres:
    """A PostgreSQL cluster of this test alone in a temporary folder, on a free port.

    PostgreSQL refuses to run as root, so when the tests run as root the cluster
    belongs to the `postgres` user, in a folder of its own under /tmp (pytest's
    folders are root's alone), and its commands run through `runuser`.
    """

    def __init__(self):
        if not (POSTGRES_BIN / "initdb").is_file():
            missing(f"needs PostgreSQL's server programs in {POSTGRES_BIN}")
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="emg-test-postgres-"))
        self.data = self.folder / "data"
        self.as_owner = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")  # fmt: skip
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args) -> None:
        command = [*self.as_owner, str(POSTGRES_BIN / program), *map(str, args)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stdout}{result.stderr}")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off")  # fmt: skip
        self._run("pg_ctl", "-D", self.data, "-o", options, "-l",
                  self.folder / "postgres.log", "-w", "start")  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: every backend is killed at once, as in a crash; the next
        start recovers from the write-ahead log."""
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def query(self, database: str, sql: str, *params):
        with psycopg.connect(self.url(database)) as connection:
            return connection.execute(sql, params).fetchall()

    def close(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass  # not running
        shutil.rmtree(self.folder, ignore_errors=True)


def manage(env: dict, *args: str, timeout_s: float = 120) -> str:
    """`python manage.py ARGS` in `env`; returns its standard output."""
    command = [sys.executable, "manage.py", *args]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=timeout_s)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


SEED_LAB = """
import json
from django.contrib.auth.models import User
from webapp.accounts.models import AgentToken
from webapp.recordings.models import RecordingSession, Subject
user = User.objects.create_user("alice", password="{password}")
token, secret = AgentToken.issue(user, "alice's laptop")
subject = Subject.objects.create(owner=user, name="Alice")
session = RecordingSession.objects.create(owner=user, subject=subject)
print(json.dumps({{"token": token.pk, "secret": secret, "session": session.pk}}))
"""


def seed_lab(env: dict, password: str) -> dict:
    """Alice, her agent token and a session to record, in env's database."""
    output = manage(env, "shell", "-c", SEED_LAB.format(password=password))
    return json.loads(output.strip().splitlines()[-1])


# ------------------------------------------------------------------ a browser


class Browser:
    """A person's browser on the portal, over plain HTTP: logs in with the login
    form and sends forms with their CSRF token, as the pages do."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies)
        )

    def get(self, path: str, timeout_s: float = 20) -> tuple[int, str]:
        return self._send(urllib.request.Request(self.base_url + path), timeout_s)

    def post(self, path: str, fields: dict, timeout_s: float = 20) -> tuple[int, str]:
        if self.csrf_token() is None:
            self.get("/login/")  # the form pages set the CSRF cookie
        request = urllib.request.Request(
            self.base_url + path,
            data=urllib.parse.urlencode(fields).encode(),
            headers={"X-CSRFToken": self.csrf_token() or "", "Referer": self.base_url},
        )
        return self._send(request, timeout_s)

    def log_in(self, username: str, password: str) -> None:
        status, page = self.post(
            "/login/", {"username": username, "password": password}
        )
        if status != 200 or "sessionid" not in self.cookie_names():
            raise AssertionError(f"login failed ({status}):\n{page[-2000:]}")

    def csrf_token(self) -> str | None:
        return next((c.value for c in self.cookies if c.name == "csrftoken"), None)

    def cookie_names(self) -> set[str]:
        return {cookie.name for cookie in self.cookies}

    def _send(self, request, timeout_s: float) -> tuple[int, str]:
        try:
            with self.opener.open(request, timeout=timeout_s) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")


def wait_for(condition, timeout_s: float, what: str, interval_s: float = 0.3):
    """Like processes.wait_until, but a condition that raises counts as not yet
    (a service that is restarting refuses connections for a moment)."""
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 (reported if it never succeeds)
            last_error = exc
        time.sleep(interval_s)
    raise TimeoutError(
        f"timed out after {timeout_s} s waiting for {what} (last: {last_error})"
    )


class LiveTab:
    """A logged-in tab on a session's recording page: its websocket receives the live
    EMG, so every stored chunk also goes through the channel layer (Redis). Like the
    page (live_recording.js), it opens a new websocket a second after one closes."""

    def __init__(self, browser: Browser, session_id: int):
        host = browser.base_url.split("://", 1)[1]
        self.url = f"ws://{host}/ws/sessions/{session_id}/live/"
        cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
        self.headers = {"Cookie": cookie, "Origin": browser.base_url}
        self.updates = 0
        self.connections = 0
        self.closing = False
        self.socket = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        from websockets.sync.client import connect

        while not self.closing:
            try:
                self.socket = connect(self.url, additional_headers=self.headers)
                self.connections += 1
                for message in self.socket:
                    self.updates += json.loads(message).get("type") == "live.emg"
            except Exception:  # noqa: BLE001 (the server went away: come back)
                pass
            time.sleep(1.0)

    def close(self) -> None:
        self.closing = True
        if self.socket is not None:
            self.socket.close()
        self.thread.join(5)
