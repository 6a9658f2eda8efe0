"""The agent's answers to server messages, without a server."""

from recorder.agent import Agent, AgentConfig
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
