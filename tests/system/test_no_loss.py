"""Zero loss through real processes: an agent on the simulated armband streams into
daphne through a proxy; the connection is cut once and the server is killed and
restarted once. The stored file must hold exactly what the device produced."""

import hashlib
import time

import numpy as np
import pytest
from django.test import Client

from recorder.devices.simulated import SimulatedArmband
from recorder.session_file import read_session
from tests.system.processes import (
    CuttableProxy,
    free_port,
    server_environment,
    start_agent,
    start_server,
    start_worker,
    wait_until,
)
from webapp.recordings.models import RecordingSession

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

SEED = 11
DURATION_S = 14.0
DONE = ("complete", "failed")


def produced_by_device(seed: int, duration_s: float) -> np.ndarray:
    """Every EMG sample the simulated armband produces in `duration_s` (its values
    do not depend on how it is read, so this equals what the agent streamed)."""
    device = SimulatedArmband(seed=seed, realtime=False, duration_s=duration_s)
    device.start()
    chunks = []
    while len(chunk := device.read()) > 0:
        chunks.append(chunk.emg)
    return np.concatenate(chunks)


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.fixture
def lab(alice_recording, tmp_path):
    return {
        "user": alice_recording.user,
        "token": alice_recording.token,
        "secret": alice_recording.secret,
        "session": alice_recording.session,
        "env": server_environment(tmp_path),
        "logs": tmp_path,
    }


def start_recording(lab) -> RecordingSession:
    """Press Start as the owner would, once the agent is online."""
    token, session = lab["token"], lab["session"]
    wait_until(lambda: (token.refresh_from_db(), token.is_online())[1], 30, "the agent")
    browser = Client()
    browser.force_login(lab["user"])
    browser.post(f"/sessions/{session.pk}/start", {"agent": token.pk})
    session.refresh_from_db()
    assert session.status == "recording"
    return session


def record_through_faults(lab, tmp_path) -> tuple[RecordingSession, str]:
    """Record DURATION_S seconds; cut the connection once and SIGKILL-restart the
    server once on the way. Returns the finished session and the agent's log."""
    port = free_port()
    env = lab["env"]
    processes = [start_server(port, env, tmp_path), start_worker(env, tmp_path)]
    proxy = CuttableProxy(port)
    try:
        device = ["--device", "simulated", "--seed", str(SEED)]
        processes.append(start_agent(
            f"ws://127.0.0.1:{proxy.listen_port}", lab["secret"], tmp_path / "spool",
            tmp_path, *device, "--duration-s", str(DURATION_S),
        ))  # fmt: skip
        session = start_recording(lab)
        time.sleep(4)
        assert proxy.cut() > 0, "the agent was not connected through the proxy"
        time.sleep(3)
        processes[0].kill()  # SIGKILL: no chance to clean up
        processes[0] = start_server(port, env, tmp_path)
        finished = lambda: (session.refresh_from_db(), session.status)[1] in DONE  # noqa: E731
        wait_until(finished, DURATION_S + 60, "the session file")
        return session, processes[2].log()
    except Exception:
        for process in processes:
            print(f"--- {process.name}\n{process.log()}")
        raise
    finally:
        proxy.close()
        for process in processes:
            process.kill()


def test_a_cut_connection_and_a_server_restart_lose_nothing(lab, tmp_path):
    session, agent_log = record_through_faults(lab, tmp_path)

    assert session.status == "complete", session.error
    # first connection, after the cut, after the restart
    assert agent_log.count("connected to ws://") >= 3, agent_log
    expected = produced_by_device(SEED, DURATION_S)
    stored = read_session(lab["env"]["MEDIA_ROOT"] + "/" + session.file.name)
    assert len(stored.emg) == len(expected) == int(DURATION_S * 500)
    assert sha256(stored.emg) == sha256(expected)
    np.testing.assert_array_equal(stored.package_num, np.arange(len(expected)))
    assert session.sample_count == session.expected_samples == len(expected)
    assert session.dropped_packets == 0
