"""`python -m recorder`: help, the agent's messages, and the session-file tools."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import h5py

from recorder.session_file import write_session
from tests.recorder.synthetic import make_emg_recording

REPO = Path(__file__).resolve().parents[2]


def recorder(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recorder", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening on it (just released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_help_lists_the_commands():
    result = recorder("--help")
    assert result.returncode == 0
    for command in ("agent", "info", "export-emg2pose"):
        assert command in result.stdout


def test_agent_help_explains_tokens():
    result = recorder("agent", "--help")
    assert result.returncode == 0
    words = " ".join(result.stdout.split())  # argparse wraps lines anywhere
    assert "--token TOKEN the agent token (shown once when created)" in words
    assert "--token-file TOKEN_FILE a file holding the token" in words
    assert "agent token (create one on the portal's Agent tokens page)" in words


def test_the_agent_needs_a_token():
    result = recorder("agent", "--server", "ws://127.0.0.1:9")
    assert result.returncode == 2
    assert "--token" in result.stderr


def test_an_unreadable_token_file_is_named(tmp_path):
    missing = tmp_path / "no-token"
    result = recorder(
        "agent", "--server", "ws://127.0.0.1:9", "--token-file", str(missing)
    )
    assert result.returncode == 1
    assert (
        "cannot read the token file" in result.stderr and str(missing) in result.stderr
    )


def test_the_agent_keeps_retrying_a_server_that_refuses_connections(tmp_path):
    url = f"ws://127.0.0.1:{free_port()}"
    agent = subprocess.Popen(
        [sys.executable, "-m", "recorder", "agent", "--server", url, "--token", "t",
         "--spool", str(tmp_path / "spool")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        output, _ = agent.communicate(timeout=3)
        raise AssertionError(f"the agent gave up (exit {agent.returncode}):\n{output}")
    except subprocess.TimeoutExpired:
        agent.terminate()  # SIGTERM: the agent stops cleanly
        output, _ = agent.communicate(timeout=10)
    assert f"connecting to {url}" in output
    refusals = [line for line in output.splitlines() if "connection refused" in line]
    assert len(refusals) >= 2, output  # it tried again
    assert "is the server running?" in refusals[0]
    assert "Traceback" not in output
    assert agent.returncode == 0


async def test_an_agent_refused_by_the_server_exits_with_code_2(tmp_path):
    from websockets.asyncio.server import serve

    hellos = []

    async def refuse(websocket):
        hellos.append(json.loads(await websocket.recv()))
        await websocket.send(json.dumps({
            "v": 1, "type": "error", "code": "bad_token",
            "message": "agent token is missing, unknown or revoked",
        }))  # fmt: skip
        await websocket.wait_closed()

    async with serve(refuse, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "recorder", "agent", "--server", f"ws://127.0.0.1:{port}",
            "--token", "emgagent_revoked", "--spool", str(tmp_path / "spool"),
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            output, _ = await asyncio.wait_for(agent.communicate(), 20)
        finally:
            if agent.returncode is None:
                agent.kill()
                await agent.wait()
    text = output.decode()
    assert agent.returncode == 2, text
    assert "the server refused this agent" in text
    assert "agent token is missing, unknown or revoked" in text
    assert hellos and hellos[0]["type"] == "agent.hello"


def test_replay_without_a_file_is_a_clear_error(tmp_path):
    result = recorder("agent", "--server", "ws://127.0.0.1:9", "--token", "t",
                      "--device", "replay", "--spool", str(tmp_path))  # fmt: skip
    assert result.returncode == 1
    assert "--device replay needs --file" in result.stderr


def test_a_missing_mindrove_playback_file_is_named(tmp_path):
    result = recorder("agent", "--server", "ws://127.0.0.1:9", "--token", "t",
                      "--device", "mindrove", "--playback-file", "/nonexistent",
                      "--spool", str(tmp_path))  # fmt: skip
    assert result.returncode == 1
    assert "error:" in result.stderr and "/nonexistent" in result.stderr
    assert "Traceback" not in result.stderr


def test_info_prints_the_summary_as_json(tmp_path):
    path = tmp_path / "session.h5"
    write_session(path, make_emg_recording(300))
    result = recorder("info", str(path))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sample_count"] == 300


def test_export_emg2pose_writes_the_emg2pose_layout(tmp_path):
    path, output = tmp_path / "session.h5", tmp_path / "out.emg2pose.h5"
    write_session(path, make_emg_recording(300))
    result = recorder("export-emg2pose", str(path), str(output))
    assert result.returncode == 0, result.stderr
    assert str(output) in result.stdout
    with h5py.File(output, "r") as exported:
        assert "/emg2pose/timeseries" in exported


def test_info_on_a_file_that_is_not_hdf5_is_an_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a session")
    result = recorder("info", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith("error:")
    assert "Traceback" not in result.stderr


def test_info_on_a_missing_file_is_an_error(tmp_path):
    result = recorder("info", str(tmp_path / "absent.h5"))
    assert result.returncode == 1
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_server_address_is_named(tmp_path):
    servers = ["--server", "ws://127.0.0.1:9", "--server", "127.0.0.1:8000"]
    result = recorder("agent", *servers, "--token", "t", "--spool", str(tmp_path))
    assert result.returncode != 0
    assert "'127.0.0.1:8000' must start with ws:// or wss://" in result.stderr
