"""The local agent, the devices it reads, and the per-session recording format.

Never imports Django: the agent runs on a person's laptop without the server.
"""

__version__ = "0.1.0"
