"""The agent's electrode contact checks (`device.contact` from the page): each is
measured on the recording's device thread in the background (a check takes
seconds), and its `device.contact_report` joins the agent's reply queue, like the
video answers, so a dropped connection does not lose it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from recorder.protocol import make_message
from recorder.streamer import DeviceStreamer

CONTACT_CHECK_S = 2.0  # impedance samples averaged per check (after 2 s settling)
CONTACT_WAIT_S = 30.0  # a check takes ~5 s; past this the device thread is stuck
# Devices without electrodes say so rather than invent values a person could trust.
NO_ELECTRODES = {
    "simulated": "a simulated armband has no electrodes to measure",
    "replay": "a replayed recording has no electrodes to measure",
}


class ContactChecks:
    """`recording_streamer` gives a session's device thread while it records (else
    None); `reply` queues a message for the server."""

    def __init__(
        self,
        device_kind: str,
        recording_streamer: Callable[[int], DeviceStreamer | None],
        reply: Callable[[str], None],
    ):
        self.device_kind = device_kind
        self.recording_streamer = recording_streamer
        self.reply = reply
        self.running: dict[int, asyncio.Task] = {}

    def start(self, session_id: int) -> None:
        """Measure in the background; one at a time per session, since repeated
        clicks would only lengthen the EMG's pause."""
        running = self.running.get(session_id)
        if running is not None and not running.done():
            return
        self.running[session_id] = asyncio.create_task(self._report(session_id))

    async def _report(self, session_id: int) -> None:
        fields = await self.measure(session_id)
        self.reply(make_message("device.contact_report", session=session_id, **fields))

    async def measure(self, session_id: int) -> dict:
        """The device.contact_report fields for one recording: a reading, or no pairs
        and a message that says why."""
        if self.device_kind in NO_ELECTRODES:
            return _no_contact(NO_ELECTRODES[self.device_kind])
        streamer = self.recording_streamer(session_id)
        if streamer is None:
            return _no_contact(f"session {session_id} is not recording on this agent")
        future = streamer.request_contact(CONTACT_CHECK_S)
        try:
            reading = await asyncio.wait_for(
                asyncio.wrap_future(future), CONTACT_WAIT_S
            )
        except TimeoutError:
            return _no_contact(f"no reading within {CONTACT_WAIT_S:g} s")
        except Exception as exc:  # the page gets why, whatever the device raised
            return _no_contact(str(exc) or type(exc).__name__)
        return {
            "pairs": list(reading.pairs),
            "resistance_kohm": list(reading.resistance_kohm),
            "message": "",
        }


def _no_contact(message: str) -> dict:
    return {"pairs": [], "resistance_kohm": [], "message": message}
