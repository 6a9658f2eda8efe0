"""python manage.py bench_load --agents A --viewers V --seconds S

The production-mode stack on loopback under load: --servers daphne processes, a
Celery worker, --inference-shards inference workers, PostgreSQL and Redis. A real
agents on simulated armbands record S seconds each (spread over the servers), and V
logged-in viewers watch their sessions' live hand pages (viewer j watches session
j mod A, its first viewer on another server than its agent: poses cross processes
through Redis). Prints one JSON line:
  {"agents", "viewers", "lost_samples", "ack_p99_ms", "pose_p99_ms", "errors", ...}
lost_samples: samples the devices produced minus what the assembled session files
hold. errors: error messages agents and viewers received, viewers that saw no pose
and sessions that did not complete (error_examples shows a few).

It never touches the site's or the tests' data: it creates (or re-creates) the
database --database on the PostgreSQL server --postgres, flushes Redis db --redis,
then runs itself again with DATABASE_URL and REDIS_URL pointing there.
"""

from __future__ import annotations

import json
import os
import re
import secrets as random_secrets
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import psycopg
import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from recorder.agent import AgentConfig
from webapp.benchmarking import (
    bench_user,
    login_cookie,
    merge_fleet_reports,
    percentile_ms,
    pose_latencies_ms,
    prepare_sessions,
    run_fleet,
    start_process,
    stop_processes,
    wait_for_files,
    wait_for_inference,
    watch_sessions,
)
from webapp.live.checkpoints import register_checkpoint, train_tiny_model
from webapp.live.groups import inference_channels
from webapp.processes import (
    MANAGE_PY,
    free_port,
    inference_worker_command,
    server_command,
    wait_for_port,
    worker_command,
)

STACK_ENV = "BENCH_LOAD_STACK"  # set in the run on the bench's own databases
INFERENCE_READY_S = 180  # inference workers import torch and load the model first
WARMUP_S = 2.0  # after a viewer's first pose: model loading and the filters settling
TEST_REDIS_DBS = range(8, 16)  # tests/services.py: TEST_SLOT k uses db 15 - k
DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class Command(BaseCommand):
    help = "Load test: A agents and V live-hand viewers on the production stack."

    def add_arguments(self, parser):
        parser.add_argument("--agents", type=int, default=10)
        parser.add_argument("--viewers", type=int, default=10)
        parser.add_argument("--seconds", type=float, default=30.0)
        parser.add_argument("--servers", type=int, default=2, help="daphne processes")
        parser.add_argument("--inference-shards", type=int, default=1)
        parser.add_argument("--agent-processes", type=int, default=2)
        parser.add_argument("--viewer-processes", type=int, default=2)
        parser.add_argument(
            "--postgres",
            default="postgres://postgres@127.0.0.1:5432",
            help="the PostgreSQL server to create --database on",
        )
        parser.add_argument("--database", default="emg_bench_load")
        parser.add_argument(
            "--redis",
            default="redis://127.0.0.1:6379/7",
            help="a Redis db of the bench's own: it is flushed first",
        )

    def handle(self, *args, **options):
        check_options(options)
        if os.environ.get(STACK_ENV) != "1":
            self.run_on_own_databases(options)
            return
        check_production_settings()
        self.stdout.write(json.dumps(measure(options)))

    def run_on_own_databases(self, options: dict) -> None:
        env = prepare_databases(options)
        self.stderr.write(
            f"bench_load: database {env['DATABASE_URL']}, redis {env['REDIS_URL']}, "
            f"files in {env['VAR_DIR']}"
        )
        run_manage(env, ["migrate", "--verbosity", "0"])
        output = run_manage(env, ["bench_load", *command_line(options)])
        self.stdout.write(output.strip().splitlines()[-1])


def check_options(options: dict) -> None:
    counts = ("agents", "servers", "inference_shards", "agent_processes",
              "viewer_processes")  # fmt: skip
    for name in counts:
        if options[name] < 1:
            raise CommandError(f"--{name.replace('_', '-')} must be 1 or more")
    if options["viewers"] < 0:
        raise CommandError("--viewers must be 0 or more")
    if options["seconds"] <= WARMUP_S + 1:
        raise CommandError(f"--seconds must be more than {WARMUP_S + 1:g}")
    if not DATABASE_NAME.fullmatch(options["database"]):
        raise CommandError(
            f"--database {options['database']!r}: use lowercase letters, digits "
            "and _ (a name of the bench's own, never the site's)"
        )
    db = redis_db(options["redis"])
    if db in TEST_REDIS_DBS:
        raise CommandError(
            f"--redis db {db} belongs to a test slot (dbs 8 to 15); use 0 to 7"
        )


def redis_db(url: str) -> int:
    path = url.rsplit("/", 1)[1] if url.count("/") >= 3 else ""
    if not path.isdigit():
        raise CommandError(f"--redis {url!r} must end in a db number, e.g. /7")
    return int(path)


def check_production_settings() -> None:
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        raise CommandError("bench_load measures the production stack: PostgreSQL")
    if not settings.REDIS_URL:
        raise CommandError("bench_load measures the production stack: REDIS_URL")


def prepare_databases(options: dict) -> dict:
    """Create the bench's database afresh and flush its Redis db; returns the
    environment of the bench's processes (production settings, DEBUG off)."""
    name, server = options["database"], options["postgres"].rstrip("/")
    try:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
        redis.Redis.from_url(options["redis"]).flushdb()
    except (psycopg.Error, redis.RedisError) as exc:
        raise CommandError(f"cannot prepare the bench's databases: {exc}") from None
    folder = Path(tempfile.mkdtemp(prefix="bench-load-"))
    return os.environ | {
        STACK_ENV: "1",
        "DATABASE_URL": f"{server}/{name}",
        "REDIS_URL": options["redis"],
        "DEBUG": "false",
        "SECRET_KEY": random_secrets.token_urlsafe(40),
        "VAR_DIR": str(folder),
        "MEDIA_ROOT": str(folder / "media"),
        "CHUNK_STORE_DIR": str(folder / "chunks"),
        "INFERENCE_SHARDS": str(options["inference_shards"]),
        "LOG_LEVEL": "WARNING",
    }


def command_line(options: dict) -> list[str]:
    names = ("agents", "viewers", "seconds", "servers", "inference_shards",
             "agent_processes", "viewer_processes", "postgres", "database",
             "redis")  # fmt: skip
    flags = [f"--{name.replace('_', '-')}" for name in names]
    return [item for flag, name in zip(flags, names, strict=True)
            for item in (flag, str(options[name]))]  # fmt: skip


def run_manage(env: dict, arguments: list[str]) -> str:
    result = subprocess.run([sys.executable, str(MANAGE_PY), *arguments], env=env,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    if result.returncode != 0:
        raise CommandError(f"manage.py {arguments[0]} failed (see above)")
    return result.stdout


# ------------------------------------------------------------------ the measurement


def measure(options: dict) -> dict:
    user = bench_user("bench-load")
    folder = Path(tempfile.mkdtemp(prefix="bench-load-model-"))
    run = register_checkpoint(user, train_tiny_model(folder), "tiny tcn")
    secrets, session_ids = prepare_sessions(user, options["agents"], "bench load")
    ports = [free_port() for _ in range(options["servers"])]
    children = start_stack(ports)
    try:
        for port in ports:
            wait_for_port(port)
        cookie = login_cookie(user)
        http_url = f"http://127.0.0.1:{ports[0]}"
        wait_for_inference(http_url, session_ids, cookie, run.pk, INFERENCE_READY_S)
        fleet, views = drive(ports, cookie, run.pk, secrets,
                             session_ids, options)  # fmt: skip
        stored = wait_for_files(session_ids, timeout_s=120 + 2 * len(session_ids))
    finally:
        stop_processes(children)
    return summarize(options, fleet, views, stored)


def start_stack(ports: list[int]) -> list[subprocess.Popen]:
    commands = {f"server-{port}": server_command("127.0.0.1", port) for port in ports}
    commands["worker"] = worker_command(queues="default")  # session files
    for channel in inference_channels():
        commands[channel] = inference_worker_command(channel)
    return [start_process(f"bench_load_{name}", command)
            for name, command in commands.items()]  # fmt: skip


def drive(ports, cookie, run_id, secrets, session_ids, options) -> tuple[dict, list]:
    """Agents and viewers, each spread over their processes; returns the merged
    agent report and every viewer's record."""
    servers = ",".join(f"ws://127.0.0.1:{port}" for port in ports)
    agent_shares = spread(list(enumerate(secrets)), options["agent_processes"])
    views = viewer_targets(ports, session_ids, options["viewers"])
    viewer_shares = spread(views, options["viewer_processes"])
    seconds = options["seconds"]
    connections.close_all()  # the forked children must not share our DB sockets
    workers = len(agent_shares) + len(viewer_shares)
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        fleets = [pool.submit(run_fleet, servers, share, seconds, AgentConfig.chunk_s)
                  for share in agent_shares]  # fmt: skip
        viewers = [pool.submit(watch_sessions, share, cookie, run_id, seconds)
                   for share in viewer_shares]  # fmt: skip
        views = [view for viewer in viewers for view in viewer.result()]
        fleet = merge_fleet_reports([f.result() for f in fleets])
    return fleet, views


def spread(items: list, processes: int) -> list[list]:
    return [share for k in range(processes) if (share := items[k::processes])]


def viewer_targets(ports, session_ids, viewers: int) -> list[tuple[str, int]]:
    """(server http url, session id) of each viewer. Agent i streams to server
    i mod n; the first viewer of its session is on the next server."""
    targets = []
    for j in range(viewers):
        agent = j % len(session_ids)
        server = (agent + 1 + j // len(session_ids)) % len(ports)
        targets.append((f"http://127.0.0.1:{ports[server]}", session_ids[agent]))
    return targets


def summarize(options: dict, fleet: dict, views: list, stored: dict) -> dict:
    latencies_ms, rates = pose_latencies_ms(views, WARMUP_S)
    viewer_errors = [error for view in views for error in view["errors"]]
    blind_viewers = sum(not view["received"] for view in views)
    incomplete = options["agents"] - stored["complete"]
    errors = len(viewer_errors) + blind_viewers + incomplete + fleet["server_errors"]
    examples = fleet["error_examples"] + sorted(set(viewer_errors))
    if blind_viewers:
        examples.append(f"{blind_viewers} viewers saw no pose")
    if incomplete:
        examples.append(f"{incomplete} sessions not complete")
    return {
        "agents": options["agents"],
        "viewers": options["viewers"],
        "seconds": options["seconds"],
        "lost_samples": fleet["samples_recorded"] - stored["samples"],
        "ack_p99_ms": percentile_ms(fleet["ack_ms"], 99),
        "pose_p99_ms": percentile_ms(latencies_ms, 99),
        "errors": errors,
        "ack_p50_ms": percentile_ms(fleet["ack_ms"], 50),
        "pose_p50_ms": percentile_ms(latencies_ms, 50),
        "poses_per_s": round(float(np.mean(rates)), 1) if rates else 0.0,
        "viewers_with_poses": len(rates),
        "samples_sent": fleet["samples_recorded"],
        "sessions_complete": stored["complete"],
        "agent_reconnects": fleet["reconnects"],
        "servers": options["servers"],
        "inference_shards": options["inference_shards"],
        "load_average_1m": round(os.getloadavg()[0], 1),
        "error_examples": examples[:8],
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
