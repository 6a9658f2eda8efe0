"""The agent's answers to server messages, and its choice of server."""

import asyncio

import pytest
from websockets.asyncio.server import serve

from recorder.agent import Agent, AgentConfig, parse_server_urls
from recorder.protocol import make_message, parse_message


def server_says(agent: Agent, type_: str, **fields) -> None:
    agent._handle(parse_message(make_message(type_, **fields)))


def test_it_sends_small_chunks_only_while_the_server_says_a_hand_watches(tmp_path):
    agent = Agent(
        AgentConfig(server_url="ws://127.0.0.1:9", token="t", spool_dir=tmp_path)
    )
    server_says(agent, "recording.start", session=7, band_rotation_deg=0)
    try:
        streamer = agent.streamers[7]
        assert streamer.chunk_s == agent.config.chunk_s == 0.2
        server_says(agent, "recording.live", session=7, live=True)
        assert streamer.chunk_s == agent.config.live_chunk_s == 0.04
        server_says(agent, "recording.live", session=7, live=False)
        assert streamer.chunk_s == 0.2
        server_says(agent, "recording.live", session=8, live=True)  # not ours: ignored
    finally:
        agent.stop_all_recordings()


@pytest.mark.parametrize(
    ("asked_chunk_s", "chunk_s"),
    [(0.1, 0.1), (0.04, 0.04), (0.01, 0.04), (5.0, 0.2), (0, 0.04), (None, 0.04)],
)  # fmt: skip
def test_a_busy_server_may_ask_for_longer_live_chunks(tmp_path, asked_chunk_s, chunk_s):
    """Never shorter than live_chunk_s, never longer than recording's chunks (None:
    a server that does not say)."""
    agent = Agent(
        AgentConfig(server_url="ws://127.0.0.1:9", token="t", spool_dir=tmp_path)
    )
    server_says(agent, "recording.start", session=7, band_rotation_deg=0)
    try:
        asked = {} if asked_chunk_s is None else {"chunk_s": asked_chunk_s}
        server_says(agent, "recording.live", session=7, live=True, **asked)
        assert agent.streamers[7].chunk_s == chunk_s
    finally:
        agent.stop_all_recordings()


def test_several_server_addresses_are_tried_in_order():
    assert parse_server_urls("ws://a:1, wss://b:2/,") == ["ws://a:1", "wss://b:2/"]


@pytest.mark.parametrize(
    "addresses, problem",
    [("", "no server address"), ("ws://a:1,http://b:2", "'http://b:2' must start")],
)
def test_a_bad_server_address_is_named(addresses, problem):
    with pytest.raises(ValueError, match=problem):
        parse_server_urls(addresses)


async def test_after_a_dropped_connection_the_agent_moves_to_the_next_server(
    tmp_path,
):
    hellos = []

    def server(name: str, drops: bool):
        async def handle(websocket):
            hellos.append((name, parse_message(await websocket.recv())["type"]))
            await websocket.send(
                make_message("agent.welcome", agent="laptop", server_version="1")
            )
            if drops:
                return  # the server process dies: the connection goes with it
            await websocket.wait_closed()

        return serve(handle, "127.0.0.1", 0)

    async with server("a", drops=True) as a, server("b", drops=False) as b:
        urls = [f"ws://127.0.0.1:{s.sockets[0].getsockname()[1]}" for s in (a, b)]
        agent = Agent(
            AgentConfig(server_url=",".join(urls), token="t", spool_dir=tmp_path,
                        reconnect_initial_s=0.05)
        )  # fmt: skip
        stop = asyncio.Event()
        running = asyncio.create_task(agent.run_forever(stop))
        while len(hellos) < 2:
            await asyncio.wait_for(agent.connected.wait(), 10)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # it stays with b
        stop.set()
        await asyncio.wait_for(running, 10)
    assert hellos == [("a", "agent.hello"), ("b", "agent.hello")]
    assert agent.server_url == urls[1]
