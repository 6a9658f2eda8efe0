"""One recording through real processes, for the fault tests: daphne server(s), a
Celery worker and an agent on the simulated armband; the owner presses Start and
Stop in a browser. The test breaks something in between; `check_nothing_lost`
then compares the session file with what the armband produced."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg

from recorder.session_file import read_session
from tests.system.conftest import ALICE_PASSWORD
from tests.system.faults import Browser, device_emg, sha256, wait_for
from tests.system.processes import (
    Process,
    free_port,
    start_agent,
    start_server,
    start_worker,
)

SEED = 21
PASSWORD = ALICE_PASSWORD  # the seeded lab (seed_lab) uses it too
DONE = ("complete", "failed")
SESSION_FIELDS = ("status", "file", "sample_count", "expected_samples",
                  "dropped_packets", "error")  # fmt: skip


@dataclass
class Lab:
    """Alice's agent token and session, in the database at `database_url`."""

    env: dict  # of the server and worker processes
    database_url: str
    secret: str
    token_id: int
    session_id: int
    logs: Path

    def session(self) -> dict:
        sql = (f"SELECT {', '.join(SESSION_FIELDS)} FROM recordings_recordingsession "
               "WHERE id = %s")  # fmt: skip
        with psycopg.connect(self.database_url, connect_timeout=5) as connection:
            row = connection.execute(sql, (self.session_id,)).fetchone()
        return dict(zip(SESSION_FIELDS, row, strict=True))


@dataclass
class Stack:
    lab: Lab
    ports: list[int]
    processes: dict[str, Process] = field(default_factory=dict)

    def url(self, k: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[k]}"

    def browser(self, k: int = 0) -> Browser:
        """Alice, logged in on server k."""
        browser = Browser(self.url(k))
        browser.log_in("alice", PASSWORD)
        return browser

    def agent_log(self) -> str:
        return self.processes["agent"].log_path.read_text(errors="replace")

    def press(self, browser: Browser, action: str) -> None:
        """Start or Stop on the session page."""
        path = f"/sessions/{self.lab.session_id}/{action}"
        status, page = browser.post(path, {"agent": self.lab.token_id})
        assert status == 200, f"{action}: HTTP {status}\n{page[-2000:]}"

    def wait_until_done(self, timeout_s: float = 90) -> dict:
        finished = lambda: (s := self.lab.session())["status"] in DONE and s  # noqa: E731
        return wait_for(finished, timeout_s, "the session file")

    def kill_all(self) -> None:
        for process in self.processes.values():
            process.kill()


@contextmanager
def recording(lab: Lab, servers: int = 1):
    """Start `servers` daphne processes, a worker and an agent that knows every
    server; Alice presses Start. Yields the Stack; kills everything afterwards."""
    stack = Stack(lab, [free_port() for _ in range(servers)])
    try:
        for k, port in enumerate(stack.ports):
            stack.processes[f"server-{k}"] = start_server(port, lab.env, lab.logs)
        stack.processes["worker"] = start_worker(lab.env, lab.logs)
        urls = ",".join(f"ws://127.0.0.1:{port}" for port in stack.ports)
        stack.processes["agent"] = start_agent(
            urls, lab.secret, lab.logs / "spool", lab.logs,
            "--device", "simulated", "--seed", str(SEED),
        )  # fmt: skip
        wait_for(lambda: "connected to" in stack.agent_log(), 60, "the agent")
        stack.press(stack.browser(), "start")
        assert lab.session()["status"] == "recording"
        yield stack
    except BaseException:
        for process in stack.processes.values():
            print(f"--- {process.name}\n{process.log()}")
        raise
    finally:
        stack.kill_all()


def check_nothing_lost(lab: Lab, session: dict, min_seconds: float) -> None:
    """The file is complete and holds exactly the samples the armband produced."""
    assert session["status"] == "complete", session["error"]
    samples = session["sample_count"]
    assert samples == session["expected_samples"] >= min_seconds * 500
    assert session["dropped_packets"] == 0
    stored = read_session(Path(lab.env["MEDIA_ROOT"]) / session["file"])
    assert len(stored.emg) == samples
    assert sha256(stored.emg) == sha256(device_emg(SEED, samples))
    np.testing.assert_array_equal(stored.package_num, np.arange(samples))


def pause(seconds: float) -> None:
    """Let the recording run on (the agent streams meanwhile)."""
    time.sleep(seconds)
