"""Several daphne processes serve one site (production mode: PostgreSQL, the Redis
channel layer). An agent streams into daphne A; a logged-in browser tab watching the
session through daphne B gets the live EMG."""

import json
import time

import pytest
from django.test import Client
from websockets.sync.client import connect

from tests.system.processes import (
    free_port,
    server_environment,
    start_agent,
    start_server,
    wait_until,
)

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

WATCH_S = 4.0


@pytest.fixture
def lab(alice_recording, tmp_path):
    browser = Client()
    browser.force_login(alice_recording.user)
    return {"token": alice_recording.token, "secret": alice_recording.secret,
            "session": alice_recording.session, "browser": browser,
            "env": server_environment(tmp_path), "logs": tmp_path}  # fmt: skip


def watch_live(port: int, session_id: int, cookie: str, seconds: float) -> list:
    """Every message a browser tab on `port` gets in `seconds`."""
    origin = f"http://127.0.0.1:{port}"
    url = f"ws://127.0.0.1:{port}/ws/sessions/{session_id}/live/"
    headers = {"Cookie": f"sessionid={cookie}", "Origin": origin}
    messages, deadline = [], time.monotonic() + seconds
    with connect(url, additional_headers=headers, open_timeout=20) as tab:
        while (left_s := deadline - time.monotonic()) > 0:
            try:
                messages.append(json.loads(tab.recv(timeout=left_s)))
            except TimeoutError:
                break
    return messages


def test_a_tab_on_one_server_sees_an_agent_on_another(lab):
    port_a, port_b = free_port(), free_port()
    env, logs = lab["env"], lab["logs"]
    processes = [start_server(port_a, env, logs), start_server(port_b, env, logs)]
    try:
        processes.append(start_agent(
            f"ws://127.0.0.1:{port_a}", lab["secret"], logs / "spool", logs,
            "--device", "simulated", "--seed", "3", "--duration-s", "60",
        ))  # fmt: skip
        token, session = lab["token"], lab["session"]
        online = lambda: (token.refresh_from_db(), token.is_online())[1]  # noqa: E731
        wait_until(online, 60, "the agent on server A")
        lab["browser"].post(f"/sessions/{session.pk}/start", {"agent": token.pk})
        session.refresh_from_db()
        assert session.status == "recording"

        cookie = lab["browser"].cookies["sessionid"].value
        messages = watch_live(port_b, session.pk, cookie, WATCH_S)
    except Exception:
        for process in processes:
            print(f"--- {process.name}\n{process.log()}")
        raise
    finally:
        for process in processes:
            process.kill()

    emg = [m for m in messages if m.get("type") == "live.emg"]
    assert emg, f"no live EMG through server B; got {[m.get('type') for m in messages]}"
    assert {m["session"] for m in emg} == {session.pk}
    seqs = [m["seq"] for m in emg]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # the agent streams 500 Hz in real time: most of the watched seconds arrive
    shown_s = sum(len(m["emg"][0]) * m["dt"] for m in emg)
    assert shown_s > WATCH_S / 2, shown_s
