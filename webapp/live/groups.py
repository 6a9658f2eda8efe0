"""Channel and group names of the live hand, and the events that cross them.

agent connection --inference.samples--> inference-<k>   (only while a tab watches)
hand tab         --inference.watch----> inference-<k>   (every WATCH_INTERVAL_S)
inference-<k>    --hand.pose----------> hand group of (session, model run)
agent connection --hand.agent---------> hand group of the session (disconnected...)
agent connection --hand.labels--------> hand group of the session (camera labels)
hand tab         --hand.watch---------> ingest group of the session
"""

from __future__ import annotations

import logging
import math
import time

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

    def count(self, session_id: int) -> None:
        self.skipped += 1
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
    """Send a chunk's EMG to the session's inference worker; never fails the ingest.

    A full channel means the worker is behind or not running: the live view skips
    these samples rather than slow the agent's acknowledgements down.
    """
    samples = chunk.samples
    message = {
        "type": "inference.samples",
        "session": session_id,
        "first_time_s": float(samples.time[0]),
        "num_channels": int(samples.emg.shape[1]),
        "sampling_rate_hz": float(sampling_rate_hz),
        "emg": samples.emg.astype("<f4").tobytes(),  # (n, C) µV, row-major
        "received_at_s": time.time(),  # server clock: the worker's staleness check
    }
    try:
        await channel_layer.send(inference_channel(session_id), message)
    except ChannelFull:
        SKIPPED.count(session_id)


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
