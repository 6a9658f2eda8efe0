"""Send the newest of a stream of messages, at most once per interval.

A message that must wait is replaced by any newer one: stale poses are dropped,
never queued, so a slow tab sees the present, not a growing backlog.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class LatestOnly:
    def __init__(self, send: Callable[[dict], Awaitable[None]], interval_s: float):
        self.send = send
        self.interval_s = interval_s
        self.pending: dict | None = None
        self.last_sent_s = -float("inf")
        self.replaced = 0  # messages dropped for a newer one
        self._timer: asyncio.TimerHandle | None = None
        self._sending: asyncio.Task | None = None

    async def offer(self, message: dict) -> None:
        now_s = time.monotonic()
        if self._timer is None and now_s - self.last_sent_s >= self.interval_s:
            await self._send(message)
            return
        if self.pending is not None:
            self.replaced += 1
        self.pending = message
        if self._timer is None:
            delay_s = max(self.last_sent_s + self.interval_s - now_s, 0.0)
            self._timer = asyncio.get_running_loop().call_later(delay_s, self._flush)

    def _flush(self) -> None:
        self._timer = None
        message, self.pending = self.pending, None
        if message is not None:
            self._sending = asyncio.create_task(self._send(message))

    async def _send(self, message: dict) -> None:
        self.last_sent_s = time.monotonic()
        await self.send(message)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.pending = None
