"""The inference worker: a Channels consumer on the channels inference-<k>.

Production runs it in its own processes, one per shard, so model compute never
shares a process with daphne's event loops:

    python manage.py runworker inference-0

The embedded mode has one process and an in-process channel layer that no other
process can reach, so daphne runs the same consumer itself (`start_in_process`),
the first time a hand tab opens. The trade-off: there, inference shares daphne's
CPU (and GIL) with the websockets; the compute still runs on its own thread, so
the event loop only waits for the GIL, never for a whole model step.

In both modes every step runs on one dedicated thread per process: a predictor's
state is touched by one thread only, and Django's shared sync thread (the ORM's)
is never blocked by a model.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from concurrent.futures import ThreadPoolExecutor

from channels.consumer import AsyncConsumer
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from channels.routing import ChannelNameRouter
from channels.worker import Worker

from webapp.live.groups import inference_channels

log = logging.getLogger(__name__)


def _one_torch_thread() -> None:
    # a tiny model per chunk: more threads only add hand-over latency, and in the
    # embedded mode they would compete with daphne for the cores
    import torch

    torch.set_num_threads(1)
    # the engine's imports take seconds: pay them before the first samples wait
    import webapp.live.predictors  # noqa: F401


INFERENCE_THREAD = ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="inference", initializer=_one_torch_thread
)
# Loading a checkpoint takes ~0.3 s: on its own thread, so the other sessions'
# poses don't stall meanwhile.
LOADING_THREAD = ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="model-loading", initializer=_one_torch_thread
)


class InferenceConsumer(AsyncConsumer):
    """Holds the predictors of the sessions whose shard this channel is."""

    room = None  # PredictorRoom, made on the first message (it imports torch)
    # (session, run) whose model is being loaded -> the watch messages waiting for it
    loading: dict[tuple, list[dict]] | None = None

    async def inference_watch(self, message):
        await self.make_room()
        key = (message["session"], message["run"])
        if self.room.is_open(message):
            await self.run_step("watch", message)
        elif key in self.loading:  # another tab of the model: answered once loaded
            self.loading[key].append(message)
        else:
            self.loading[key] = [message]
            # the next messages go on while the model loads
            self.load_task = asyncio.create_task(self.load_then_watch(key, message))

    async def load_then_watch(self, key: tuple, message: dict) -> None:
        loop = asyncio.get_running_loop()
        try:
            loaded = await loop.run_in_executor(
                LOADING_THREAD, self.room.load_predictor, message
            )
            await self.run_step("watch", message, loaded)
            for waiting in self.loading.pop(key)[1:]:
                await self.run_step("watch", waiting)
        finally:
            self.loading.pop(key, None)

    async def inference_smoothing(self, message):
        await self.run_step("set_smoothing", message)

    async def inference_batch(self, message):
        await self.run_step("push_batch", message)

    async def make_room(self) -> None:
        if self.room is None:
            from webapp.live.predictors import PredictorRoom

            loop = asyncio.get_running_loop()
            self.room = await loop.run_in_executor(INFERENCE_THREAD, PredictorRoom)
            self.loading = {}

    async def run_step(self, name: str, message: dict, *args) -> None:
        await self.make_room()
        loop = asyncio.get_running_loop()
        step = getattr(self.room, name)
        try:
            outgoing = await loop.run_in_executor(
                INFERENCE_THREAD, step, message, *args
            )
        except Exception:  # a malformed message: keep every session's predictors
            log.exception("inference worker: %s failed on %s", name, message["type"])
            return
        for kind, name_, event in outgoing:
            await self.deliver(kind, name_, event)

    async def deliver(self, kind: str, name: str, event: dict) -> None:
        try:
            if kind == "group":
                await self.channel_layer.group_send(name, event)
            else:
                await self.channel_layer.send(name, event)
        except ChannelFull:  # a tab that stopped reading: its poses would be stale
            log.info("dropped a %s for %s: channel full", event["type"], name)


def channel_application() -> ChannelNameRouter:
    """What `runworker` (and the in-process worker) serve: every inference shard."""
    return ChannelNameRouter(
        {channel: InferenceConsumer.as_asgi() for channel in inference_channels()}
    )


# event loop -> (worker, task) of the in-process worker (tests run many loops)
_IN_PROCESS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def start_in_process() -> None:
    """Run the inference worker on this event loop unless it already runs here."""
    loop = asyncio.get_running_loop()
    running = _IN_PROCESS.get(loop)
    if running is not None and not running[1].done():
        return
    worker = Worker(channel_application(), inference_channels(), get_channel_layer())
    _IN_PROCESS[loop] = (worker, loop.create_task(worker.arun()))
    INFERENCE_THREAD.submit(lambda: None)  # starts the thread: imports the engine
    log.info("inference worker started in this process on %s", inference_channels())


async def stop_in_process() -> None:
    """Stop this loop's in-process worker and its consumers (tests)."""
    running = _IN_PROCESS.pop(asyncio.get_running_loop(), None)
    if running is None:
        return
    worker, task = running
    tasks = [task] + [
        details["future"] for details in worker.application_instances.values()
    ]
    for pending in tasks:
        pending.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
