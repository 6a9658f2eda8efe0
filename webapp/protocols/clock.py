"""Put browser-driven protocol events on the EMG's clock.

EMG sample times are the agent's clock (unix seconds, on the laptop). A protocol
event happens in the browser and reaches the server over the tab's websocket. The
server knows, for each live EMG update it forwards to the tab, when it received it
(`server_s`) and the time of its newest sample (`agent_s`). Their difference is the
clocks' offset plus the delay of that sample's trip (device buffer, the agent's
chunking, the network, the durable write); that delay is never negative. The smallest
difference over the last few seconds is therefore the best estimate of the offset:
it is the update that travelled fastest.

Error bound: an event stamped with `server_s - offset` is early by the fastest
trip's delay (on a LAN, the chunk length plus a few ms: tens of ms), and late by the
event's own trip from the tab to the server (a few ms on a LAN; the tab reports how
long it held an event it could not send at once, and that is subtracted). Clock
drift between the machines over the window is negligible (ppm). So a step's marker
lands within about one chunk (~50-100 ms) of the sample that was being recorded when
the prompt changed, which is well under a gesture's transition time.
"""

from __future__ import annotations

from collections import deque

OFFSET_WINDOW_S = 10.0  # follow drift and a restarted agent; still many updates


class AgentClock:
    """Maps the server's clock to the agent's, from observed EMG updates."""

    def __init__(self, window_s: float = OFFSET_WINDOW_S):
        self.window_s = window_s
        self._offsets: deque[tuple[float, float]] = deque()  # (server_s, offset_s)

    def observe(self, agent_s: float, server_s: float) -> None:
        """An EMG update whose newest sample is at `agent_s` arrived at `server_s`."""
        self._offsets.append((server_s, server_s - agent_s))
        while self._offsets and self._offsets[0][0] < server_s - self.window_s:
            self._offsets.popleft()

    @property
    def ready(self) -> bool:
        return bool(self._offsets)

    def agent_time(self, server_s: float) -> float:
        """The agent's clock at server time `server_s`; needs one observation."""
        if not self._offsets:
            raise ValueError(
                "no EMG has been seen yet, so the agent's clock is unknown"
            )
        return server_s - min(offset for _, offset in self._offsets)


def newest_sample_time(live_emg: dict) -> float:
    """The agent time of the newest sample in a `live.emg` update (see
    webapp/recordings/ingest.py): its decimated points start at t0, dt apart; the
    last raw sample may be up to one decimation step later (2 ms at 500 Hz)."""
    points = len(live_emg["emg"][0]) if live_emg["emg"] else 0
    return float(live_emg["t0"]) + max(points - 1, 0) * float(live_emg["dt"])
