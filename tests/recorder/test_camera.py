"""The camera path's wire format, spool stream, health and agent wiring."""

from __future__ import annotations

import time

import numpy as np
import pytest

from recorder.__main__ import main
from recorder.agent import Agent, AgentConfig, _stopped_message, camera_status
from recorder.camera.clock import ClockSync
from recorder.camera.labeler import FrameLabeler
from recorder.camera.sources import NoFramesSource, open_camera
from recorder.camera.streamer import CameraStreamer
from recorder.devices.simulated import SimulatedArmband
from recorder.protocol import (
    STREAM_EMG,
    STREAM_LABELS,
    ProtocolError,
    decode_chunk,
    encode_chunk,
    encode_label_chunk,
    make_message,
    parse_message,
)
from recorder.spool import Spool
from recorder.streamer import DeviceStreamer
from tests.recorder.camera_helpers import make_label_frames
from tests.recorder.test_protocol import make_samples


def test_a_label_chunk_round_trips_with_its_missing_frames():
    frames = make_label_frames(6)
    chunk = decode_chunk(encode_label_chunk(3, 7, frames), expected_channels=8)
    assert (chunk.session_id, chunk.stream_id, chunk.seq) == (3, STREAM_LABELS, 7)
    for name in ("frame_time", "landmarks", "pose", "joints", "ik_error"):
        np.testing.assert_array_equal(
            getattr(chunk.samples, name), getattr(frames, name)
        )
    assert np.isnan(chunk.samples.joints[1]).all()
    assert chunk.samples.label_valid.tolist() == [True, False, True, True, True, True]


@pytest.mark.parametrize(
    "spoil, code, words",
    [
        (lambda f: f.joints.__setitem__(0, np.inf), "not_finite", "joints"),
        (lambda f: f.label_valid.__setitem__(1, True), "bad_labels", "no joints"),
        (lambda f: f.frame_time.__setitem__(2, 0.0), "bad_time", "non-decreasing"),
    ],
)
def test_a_bad_label_chunk_is_refused_by_name(spoil, code, words):
    frames = make_label_frames(6)
    spoil(frames)
    with pytest.raises(ProtocolError) as caught:
        decode_chunk(encode_label_chunk(1, 0, frames))
    assert caught.value.code == code and words in str(caught.value)


def test_a_label_chunk_with_the_wrong_joint_count_is_refused():
    frame = bytearray(encode_label_chunk(1, 0, make_label_frames(2)))
    frame[6] = 17  # the channels byte: joints for labels
    with pytest.raises(ProtocolError, match="17 joints"):
        decode_chunk(bytes(frame))


def test_camera_status_messages_are_checked():
    text = make_message(
        "camera.status", session=1, state="ok", fps=29.5, latency_ms=31, message=""
    )
    assert parse_message(text)["fps"] == 29.5
    with pytest.raises(ProtocolError, match="state' must be one of"):
        make_message(
            "camera.status", session=1, state="??", fps=0, latency_ms=0, message=""
        )
    with pytest.raises(ProtocolError, match="label_chunks' must be int"):
        make_message(
            "recording.stopped", session=1, chunks=1, samples=1, dropped_packets=0,
            reason="", label_chunks="3",
        )  # fmt: skip


def test_the_spool_keeps_label_and_emg_sequence_numbers_apart(tmp_path):
    session = Spool(tmp_path).open_session(4)
    session.add_chunk(encode_chunk(4, STREAM_EMG, 0, make_samples()), 20, 0)
    session.add_label_chunk(encode_label_chunk(4, 0, make_label_frames(3)), 3)
    session.add_label_chunk(encode_label_chunk(4, 1, make_label_frames(3)), 3)
    session.acknowledge([0], STREAM_LABELS)
    assert (session.pending, session.pending_of(STREAM_LABELS)) == ({0}, {1})
    reopened = Spool(tmp_path).open_session(4)
    assert (reopened.next_seq, reopened.next_label_seq) == (1, 2)
    assert (reopened.samples, reopened.label_frames) == (20, 6)
    assert decode_chunk(reopened.frame(1, STREAM_LABELS)).stream_id == STREAM_LABELS
    reopened.acknowledge([0])
    reopened.acknowledge([0, 1], STREAM_LABELS)
    assert reopened.all_acknowledged


def test_a_camera_without_frames_says_so_and_emg_goes_on(tmp_path):
    session = Spool(tmp_path).open_session(2)
    clock = ClockSync()
    camera = CameraStreamer(
        NoFramesSource(), session, clock, lambda: None, FrameLabeler,
        no_frames_after_s=0.3,
    )  # fmt: skip
    device = SimulatedArmband(seed=1, duration_s=0.8)
    streamer = DeviceStreamer(
        device, session, lambda: None, chunk_s=0.05, clock=clock, camera=camera
    )
    streamer.start()
    time.sleep(0.6)
    status = camera.status()
    streamer.join(timeout=10)
    assert status["state"] == "no_frames" and status["fps"] == 0.0
    assert "no frames from the camera" in status["message"]
    assert "EMG recording goes on" in status["message"]
    assert session.samples == 400 and session.next_label_seq == 0
    assert session.stopped and session.state["reason"] == "device finished"
    assert not camera.is_alive()


def test_without_a_camera_the_status_is_off():
    assert camera_status(None)["state"] == "off"


def test_the_agent_streams_simulated_labels_and_reports_them_at_stop(tmp_path):
    config = AgentConfig(
        server_url="ws://127.0.0.1:9", token="t", spool_dir=tmp_path,
        camera="simulated", device_options={"duration_s": 1.0},
    )  # fmt: skip
    FrameLabeler()  # import the IK first (seconds): the camera starts with it
    agent = Agent(config)
    agent.start_recording(7)
    agent.set_live(7, True)
    assert agent.streamers[7].camera.chunk_s == config.live_chunk_s
    agent.streamers[7].join(timeout=20)
    session = agent.sessions[7]
    assert session.next_label_seq >= 1 and session.label_frames >= 15
    assert parse_message(_stopped_message(session))["label_chunks"] == (
        session.next_label_seq
    )


def test_only_the_simulated_armband_has_a_simulated_camera():
    with pytest.raises(ValueError, match="--device simulated"):
        open_camera("simulated", device=None)
    assert open_camera("none") is None


@pytest.mark.parametrize(
    "arguments, problem",
    [
        (["--device", "mindrove", "--camera", "simulated"], "films the simulated"),
        (["--camera", "video"], "--camera video needs --video FILE"),
        (["--video", "/nonexistent.mp4"], "no such file"),
        (["--save-video", "/tmp/v"], "--save-video needs camera frames"),
    ],
)
def test_the_cli_names_a_bad_camera_choice(arguments, problem, capsys):
    argv = ["agent", "--server", "ws://127.0.0.1:9", "--token", "t", *arguments]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert problem in str(exited.value)
