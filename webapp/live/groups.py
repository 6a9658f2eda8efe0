"""Channel and group names of the live hand, and the events that cross them.

agent connection --inference.batch----> inference-<k>   (only while a tab watches)
hand tab         --inference.watch----> inference-<k>   (every WATCH_INTERVAL_S)
inference-<k>    --hand.pose----------> hand group of (session, model run)
agent connection --hand.agent---------> hand group of the session (disconnected...)
agent connection --hand.labels--------> hand group of the session (camera labels)
hand tab         --hand.watch---------> ingest group of the session
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref

from channels.exceptions import ChannelFull
from django.conf import settings

log = logging.getLogger(__name__)


class SkippedChunks:
    """Counts chunks skipped for a full inference channel and logs them at most once
    per interval: an overloaded worker would otherwise mean a warning per chunk."""

    def __init__(self, log_interval_s: float = 10.0):
        self.log_interval_s = log_interval_s
        self.skipped = 0  # since the last report
        self.reported_at_s = -math.inf

    def count(self, session_id: int, chunks: int = 1) -> None:
        self.skipped += chunks
        now_s = time.monotonic()
        if now_s - self.reported_at_s >= self.log_interval_s:
            log.warning(
                "inference channel full (its worker is behind): %d chunks skipped "
                "since the last report, the latest of session %s",
                self.skipped, session_id,
            )  # fmt: skip
            self.skipped, self.reported_at_s = 0, now_s


SKIPPED = SkippedChunks()


def inference_channel(session_id: int) -> str:
    """The worker channel that holds this session's predictors (always the same)."""
    return f"inference-{session_id % settings.INFERENCE_SHARDS}"


def inference_channels() -> list[str]:
    return [f"inference-{k}" for k in range(settings.INFERENCE_SHARDS)]


def hand_group(session_id: int, run_id: int) -> str:
    """Tabs showing one session's poses from one model: they share one predictor."""
    return f"session.{session_id}.hand.{run_id}"


def hand_session_group(session_id: int) -> str:
    """Every hand tab of a session, whatever its model: agent news, camera labels."""
    return f"session.{session_id}.hand"


async def forward_samples(
    channel_layer, session_id: int, chunk, sampling_rate_hz: float
) -> None:
    """Pass a chunk's EMG on to the session's inference worker; never fails the
    ingest. It leaves with the other chunks of this process for the same worker
    (SampleForwarder): one message per FORWARD_BATCH_S, not one per chunk."""
    samples = chunk.samples
    item = {
        "session": session_id,
        "first_time_s": float(samples.time[0]),
        "num_channels": int(samples.emg.shape[1]),
        "sampling_rate_hz": float(sampling_rate_hz),
        "emg": samples.emg.astype("<f4").tobytes(),  # (n, C) µV, row-major
        "received_at_s": time.time(),  # server clock: the worker's staleness check
    }
    forwarder_for(channel_layer).add(inference_channel(session_id), item)


# Chunks bound for one inference channel wait this long to leave together. A
# hundred watched agents make ~500 chunks a second: as single messages, the worker
# spent its time receiving and handing them to its thread, and fell behind.
FORWARD_BATCH_S = 0.02


class SampleForwarder:
    """Gathers the chunks this process forwards to each inference channel and sends
    them as one `inference.batch` per channel every FORWARD_BATCH_S.

    A full channel means the worker is behind or not running: the live view skips
    those samples rather than slow the agents' acknowledgements down."""

    def __init__(self, channel_layer):
        self.channel_layer = channel_layer
        self.pending: dict[str, list[dict]] = {}  # channel -> chunks
        self.sending: asyncio.Task | None = None

    def add(self, channel: str, item: dict) -> None:
        self.pending.setdefault(channel, []).append(item)
        if self.sending is None or self.sending.done():
            self.sending = asyncio.create_task(self.send_soon())

    async def send_soon(self) -> None:
        await asyncio.sleep(FORWARD_BATCH_S)
        while self.pending:  # chunks added while sending go out at once
            pending, self.pending = self.pending, {}
            for channel, items in pending.items():
                try:
                    await self.channel_layer.send(
                        channel, {"type": "inference.batch", "chunks": items}
                    )
                except ChannelFull:
                    SKIPPED.count(items[-1]["session"], len(items))


# event loop -> its forwarder (tests run many loops; daphne runs one)
_FORWARDERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def forwarder_for(channel_layer) -> SampleForwarder:
    loop = asyncio.get_running_loop()
    forwarder = _FORWARDERS.get(loop)
    if forwarder is None or forwarder.channel_layer is not channel_layer:
        forwarder = _FORWARDERS[loop] = SampleForwarder(channel_layer)
    return forwarder


async def announce_agent(channel_layer, session_id: int, state: str) -> None:
    """Tell a session's hand tabs what its agent did: streaming, disconnected,
    stopped."""
    await channel_layer.group_send(
        hand_session_group(session_id), {"type": "hand.agent", "state": state}
    )


def labels_event(time_s: float, joints_mm) -> dict:
    """A camera label frame for the hand tabs (issue #5 sends these): `time_s` on
    the agent's clock like the poses, `joints_mm` 63 floats (21 joints, MediaPipe
    order, wrist-relative mm). Send it to `hand_session_group(session)`."""
    return {"type": "hand.labels", "t": float(time_s), "joints": list(joints_mm)}
