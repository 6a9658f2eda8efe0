"""Checks of what an agent sends beyond recorder.protocol's schema: values the
server can store and display. Each failure is a ProtocolError whose message names
the message and the field."""

from __future__ import annotations

from recorder.protocol import MAX_CHANNELS, ProtocolError

# the armband has 10 resistance rows; far more is not an electrode report
MAX_CONTACT_PAIRS = 64
# ids and counts must fit the database's columns: a larger one names no session, and
# a larger count is no count this server could have stored
MAX_SESSION_ID = 2**63 - 1
MAX_STOP_COUNTS = {
    "chunks": 2**31 - 1,
    "samples": 2**63 - 1,
    "dropped_packets": 2**31 - 1,
    "label_chunks": 2**31 - 1,
}


def check_device(device: dict) -> None:
    """The device an agent announces must be one we can store and display."""
    names = device.get("channel_names")
    rate_hz = device.get("sampling_rate_hz")
    if not isinstance(names, list) or not 1 <= len(names) <= MAX_CHANNELS:
        raise ProtocolError(
            "bad_schema",
            f"agent.hello: device.channel_names must list 1 to {MAX_CHANNELS} channels",
        )
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, (int, float)):
        raise ProtocolError(
            "bad_schema", "agent.hello: device.sampling_rate_hz must be a number"
        )
    if not 1.0 <= rate_hz <= 100_000.0:
        raise ProtocolError(
            "bad_schema",
            f"agent.hello: a sampling rate of {rate_hz} Hz is out of range 1..100000",
        )
    extra = device.get("extra", {})
    if not isinstance(extra, dict):
        raise ProtocolError("bad_schema", "agent.hello: device.extra must be an object")
    line_hz = extra.get("line_frequency_hz", 50.0)
    if not _is_number(line_hz) or not 1.0 <= line_hz <= 1000.0:
        raise ProtocolError(
            "bad_schema",
            "agent.hello: device.extra.line_frequency_hz must be a number of Hz "
            "in 1..1000",
        )


def reported_sessions(sessions: list) -> set[int]:
    """The session ids of the hello's session list: {"session": id, ...} each."""
    for entry in sessions:
        session_id = entry.get("session") if isinstance(entry, dict) else None
        if not _is_number(session_id) or not isinstance(session_id, int):
            raise ProtocolError(
                "bad_schema",
                "agent.hello: sessions must list objects with an integer 'session'",
            )
    return {entry["session"] for entry in sessions}


def check_session_id(session_id: int) -> None:
    if not 1 <= session_id <= MAX_SESSION_ID:
        raise ProtocolError("unknown_session", f"session {session_id} does not exist")


def check_stop_counts(message: dict) -> None:
    """recording.stopped's totals: counts, so whole numbers from zero up."""
    for name, largest in MAX_STOP_COUNTS.items():
        value = message.get(name, 0)
        if not 0 <= value <= largest:
            raise ProtocolError(
                "bad_schema",
                f"recording.stopped: {name} {value} is out of range 0..{largest}",
            )


def check_contact_report(message: dict) -> None:
    """One name per value, names as text, values finite numbers or None."""
    pairs, values = message["pairs"], message["resistance_kohm"]
    if len(pairs) != len(values):
        raise ProtocolError(
            "bad_contact_report",
            f"device.contact_report: {len(pairs)} pairs but "
            f"{len(values)} resistance values",
        )
    if len(pairs) > MAX_CONTACT_PAIRS:
        raise ProtocolError(
            "bad_contact_report",
            f"device.contact_report: {len(pairs)} pairs is more than "
            f"{MAX_CONTACT_PAIRS}",
        )
    if not all(isinstance(name, str) and len(name) <= 40 for name in pairs):
        raise ProtocolError(
            "bad_contact_report",
            "device.contact_report: pairs must be names of up to 40 characters",
        )
    if not all(value is None or _is_number(value) for value in values):
        raise ProtocolError(
            "bad_contact_report",
            "device.contact_report: resistance_kohm must hold numbers or null",
        )


def _is_number(value) -> bool:
    # parse_message already refused NaN and infinities
    return isinstance(value, (int, float)) and not isinstance(value, bool)
