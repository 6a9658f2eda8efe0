"""A consumer's periodic beat that outlives a channel-layer outage.

Browser tabs tell the agent's connection (and the inference worker) every few
seconds that they still watch. In production the channel layer is Redis: while
Redis restarts, a beat fails, and a restarted Redis has forgotten every group
membership. So each beat re-joins the tab's groups before it speaks, and a failed
beat is logged and tried again at the next one, instead of ending the loop (which
would leave the tab silent until reloaded).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


async def beat_forever(
    beat: Callable[[], Awaitable[None]], interval_s: float, first_wait: bool
) -> None:
    """Await `beat()` every `interval_s` until cancelled; `first_wait`: sleep first."""
    if first_wait:
        await asyncio.sleep(interval_s)
    while True:
        try:
            await beat()
        except (OSError, RedisError) as exc:
            logger.warning("channel layer unavailable, will retry: %s", exc)
        await asyncio.sleep(interval_s)
