"""Electrode contact checks on the agent side: the messages, the device thread that
measures between reads, and the agent's answer to device.contact."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from recorder.agent import Agent, AgentConfig
from recorder.devices.base import DeviceError
from recorder.devices.mindrove import ContactReading
from recorder.devices.simulated import SimulatedArmband
from recorder.protocol import ProtocolError, make_message, parse_message
from recorder.spool import Spool
from recorder.streamer import DeviceStreamer

READING = ContactReading(("6-Ref", "5-6"), (42.0, None), samples_set_aside=2250)


class ArmbandWithContact(SimulatedArmband):
    """A simulated stream that answers contact checks like the MindRove adapter."""

    def __init__(self, fail_with: Exception | None = None, stuck: bool = False):
        super().__init__(realtime=False)
        self.info = dataclasses.replace(self.info, kind="mindrove")
        self.fail_with = fail_with
        self.stuck = stuck
        self.in_impedance_mode = False
        self.checks = 0

    def read_contact(self, seconds: float) -> ContactReading:
        self.checks += 1
        if self.fail_with is not None:
            self.in_impedance_mode = self.stuck
            raise self.fail_with
        return READING


# ---------------------------------------------------------------- messages


def test_the_contact_messages_round_trip():
    ask = parse_message(make_message("device.contact", session=3))
    assert ask["session"] == 3
    report = parse_message(
        make_message(
            "device.contact_report",
            session=3,
            pairs=["6-Ref"],
            resistance_kohm=[12.0],
            message="",
        )
    )
    assert report["pairs"] == ["6-Ref"] and report["resistance_kohm"] == [12.0]


@pytest.mark.parametrize(
    "fields, says",
    [
        ({"pairs": "6-Ref", "resistance_kohm": [1.0], "message": ""}, "'pairs' must"),
        ({"pairs": [], "resistance_kohm": []}, "missing field 'message'"),
        ({"pairs": [], "resistance_kohm": 5, "message": ""}, "'resistance_kohm'"),
    ],
)
def test_a_malformed_contact_report_is_named(fields, says):
    with pytest.raises(ProtocolError, match=says) as raised:
        make_message("device.contact_report", session=3, **fields)
    assert raised.value.code == "bad_schema"


# ---------------------------------------------------------------- device thread


def streaming(device, tmp_path) -> DeviceStreamer:
    session = Spool(tmp_path / "spool").open_session(1)
    streamer = DeviceStreamer(device, session, lambda: None, chunk_s=0.02)
    streamer.start()
    return streamer


def test_the_device_thread_measures_between_reads_and_keeps_streaming(tmp_path):
    device = ArmbandWithContact()
    streamer = streaming(device, tmp_path)
    try:
        assert streamer.request_contact(1.0).result(timeout=5) == READING
        chunks_after_check = streamer.spool_session.next_seq
        time.sleep(0.1)
        assert streamer.is_alive()
        assert streamer.spool_session.next_seq > chunks_after_check
    finally:
        streamer.stop_requested.set()
        streamer.join(5)


def test_a_failed_check_is_reported_and_the_recording_goes_on(tmp_path):
    device = ArmbandWithContact(fail_with=DeviceError("could not switch"))
    streamer = streaming(device, tmp_path)
    try:
        with pytest.raises(DeviceError, match="could not switch"):
            streamer.request_contact(1.0).result(timeout=5)
        time.sleep(0.1)
        assert streamer.is_alive()
    finally:
        streamer.stop_requested.set()
        streamer.join(5)


def test_a_band_stuck_in_impedance_mode_ends_the_recording(tmp_path):
    device = ArmbandWithContact(fail_with=DeviceError("no EMG mode"), stuck=True)
    streamer = streaming(device, tmp_path)
    with pytest.raises(DeviceError):
        streamer.request_contact(1.0).result(timeout=5)
    streamer.join(5)
    assert not streamer.is_alive()
    assert "no EMG mode" in streamer.spool_session.state["reason"]


def test_a_device_without_impedance_mode_says_so_at_once(tmp_path):
    streamer = DeviceStreamer(
        SimulatedArmband(realtime=False),
        Spool(tmp_path / "spool").open_session(1),
        lambda: None,
    )
    with pytest.raises(DeviceError, match="simulated device cannot measure"):
        streamer.request_contact(1.0).result(timeout=1)


# ---------------------------------------------------------------- the agent


def make_agent(tmp_path, device_factory=None) -> Agent:
    config = AgentConfig(server_url="ws://127.0.0.1:9", token="t", spool_dir=tmp_path)
    return Agent(config, device_factory=device_factory)


def start(agent: Agent, session_id: int) -> None:
    agent._handle(
        parse_message(
            make_message("recording.start", session=session_id, band_rotation_deg=0)
        )
    )


def test_a_simulated_agent_says_it_has_no_electrodes(tmp_path):
    agent = make_agent(tmp_path)
    fields = asyncio.run(agent.contact_checks.measure(7))
    assert fields == {
        "pairs": [],
        "resistance_kohm": [],
        "message": "a simulated armband has no electrodes to measure",
    }


def test_the_agent_answers_device_contact_with_a_report(tmp_path):
    agent = make_agent(tmp_path, device_factory=ArmbandWithContact)
    start(agent, 7)

    async def ask_twice():
        agent.contact_checks.start(7)
        agent.contact_checks.start(7)  # while one runs: not measured again
        await agent.contact_checks.running[7]

    try:
        asyncio.run(ask_twice())
        assert agent.streamers[7].device.checks == 1
    finally:
        agent.stop_all_recordings()
    assert [parse_message(reply) for reply in agent.replies] == [
        {
            "v": 1,
            "type": "device.contact_report",
            "session": 7,
            "pairs": ["6-Ref", "5-6"],
            "resistance_kohm": [42.0, None],
            "message": "",
        }
    ]


def test_a_session_not_recording_here_gets_a_reason(tmp_path):
    agent = make_agent(tmp_path, device_factory=ArmbandWithContact)
    fields = asyncio.run(agent.contact_checks.measure(9))
    assert fields["pairs"] == [] and "not recording on this agent" in fields["message"]


def test_a_device_error_becomes_the_reports_message(tmp_path):
    def failing():
        return ArmbandWithContact(fail_with=DeviceError("the armband went away"))

    agent = make_agent(tmp_path, device_factory=failing)
    start(agent, 7)
    try:
        fields = asyncio.run(agent.contact_checks.measure(7))
    finally:
        agent.stop_all_recordings()
    assert fields == {
        "pairs": [],
        "resistance_kohm": [],
        "message": "the armband went away",
    }
