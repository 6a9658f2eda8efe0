"""python manage.py bench_ingest --agents N --seconds S

Starts one daphne server and a Celery worker, then N real agents (in this process)
on simulated 8-channel 500 Hz armbands, each recording S seconds into its own session.
Prints one final JSON line:
  {"agents", "samples_sent", "samples_stored", "lost", "ack_p99_ms", ...}
samples_sent counts what the devices produced; samples_stored what the session files
hold once assembled. Uses this settings' database and broker (embedded by default).
The server fsyncs every chunk before acknowledging it, as in production; the agents'
spools live in /dev/shm (see webapp.benchmarking.SPOOL_PARENT).
"""

import json
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from recorder.agent import AgentConfig
from webapp.benchmarking import (
    bench_user,
    cpu_seconds,
    percentile_ms,
    prepare_sessions,
    run_fleets,
    start_process,
    stop_processes,
    wait_for_files,
)
from webapp.processes import free_port, server_command, wait_for_port, worker_command


class Command(BaseCommand):
    help = "Measure ingest: N simulated agents streaming into one server."

    def add_arguments(self, parser):
        parser.add_argument("--agents", type=int, default=10)
        parser.add_argument("--seconds", type=float, default=10.0)
        parser.add_argument("--port", type=int, default=0, help="default: a free port")
        parser.add_argument(
            "--agent-processes",
            type=int,
            default=2,
            help="processes the agents are spread over (each agent is "
            "one laptop in real life; one Python process can't be 100)",
        )
        parser.add_argument(
            "--chunk-ms",
            type=float,
            default=AgentConfig.chunk_s * 1000,
            help="samples per chunk, in ms of signal",
        )

    def handle(
        self, *args, agents, seconds, port, chunk_ms, agent_processes, **options
    ):
        call_command("migrate", interactive=False, verbosity=0)
        port = port or free_port()
        user = bench_user("bench-ingest")
        secrets, session_ids = prepare_sessions(user, agents, "bench")
        children = [
            start_process("bench_ingest_server", server_command("127.0.0.1", port)),
            start_process("bench_ingest_worker", worker_command()),
        ]
        try:
            wait_for_port(port)
            started_s, server_cpu_s = time.monotonic(), cpu_seconds(children[0].pid)
            fleet = run_fleets(
                f"ws://127.0.0.1:{port}",
                secrets,
                seconds,
                chunk_ms / 1000,
                agent_processes,
            )
            elapsed_s = time.monotonic() - started_s
            server_cpu_s = cpu_seconds(children[0].pid) - server_cpu_s
            stored = wait_for_files(session_ids, timeout_s=120 + agents)
        finally:
            stop_processes(children)
        result = summarize(agents, fleet, stored)
        result["chunk_ms"] = chunk_ms
        result["agent_processes"] = agent_processes
        # how busy each side was while streaming (100 % = one core)
        result["server_cpu_percent"] = round(100 * server_cpu_s / elapsed_s)
        result["agents_cpu_percent"] = round(100 * fleet["cpu_s"] / elapsed_s)
        self.stdout.write(json.dumps(result))


def summarize(agents: int, fleet: dict, stored: dict) -> dict:
    produced = fleet["samples_recorded"]
    ack_ms = fleet["ack_ms"]
    return {
        "agents": agents,
        "samples_sent": produced,
        "samples_stored": stored["samples"],
        "lost": produced - stored["samples"],
        "ack_p50_ms": percentile_ms(ack_ms, 50),
        "ack_p99_ms": percentile_ms(ack_ms, 99),
        "sessions_complete": stored["complete"],
        "chunks_sent": fleet["chunks_sent"],
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[
            -1
        ],
    }
