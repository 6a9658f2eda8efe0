"""A tab's beat survives a channel-layer outage (webapp/heartbeat.py)."""

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from webapp.heartbeat import beat_forever


async def test_a_failed_beat_is_tried_again_at_the_next_one():
    beats = []

    async def beat():
        beats.append(len(beats))
        if len(beats) <= 2:  # Redis is restarting
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379")

    loop = asyncio.create_task(beat_forever(beat, 0.01, first_wait=False))
    while len(beats) < 4:
        await asyncio.sleep(0.01)
    loop.cancel()
    assert beats[:4] == [0, 1, 2, 3]


async def test_a_bug_in_a_beat_is_not_swallowed():
    async def beat():
        raise KeyError("run")

    with pytest.raises(KeyError):
        await beat_forever(beat, 0.01, first_wait=True)
