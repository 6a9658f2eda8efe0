"""`manage.py bench_load` end to end, small: 2 agents and 2 live-hand viewers for 5 s
on the production stack, on a database and Redis db of this test slot's own."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from tests.system.processes import ROOT

pytestmark = [pytest.mark.system]

KEYS = {"agents", "viewers", "lost_samples", "ack_p99_ms", "pose_p99_ms", "errors"}


def bench_load(*arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "manage.py", "bench_load", *arguments]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          timeout=400)  # fmt: skip


def test_bench_load_prints_one_json_line_and_loses_nothing(production_services):
    test_db = int(settings.REDIS_URL.rsplit("/", 1)[1])  # 15 - TEST_SLOT
    slot = os.environ.get("TEST_SLOT", "0")
    result = bench_load(
        "--agents", "2", "--viewers", "2", "--seconds", "5",
        "--database", f"emg_bench_load_test_{slot}",
        "--redis", f"redis://127.0.0.1:6379/{test_db - 8}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    report = json.loads(lines[0])
    assert KEYS <= report.keys()
    assert (report["agents"], report["viewers"]) == (2, 2)
    assert report["lost_samples"] == 0 and report["errors"] == 0, report
    assert report["samples_sent"] == 2 * 5 * 500
    assert report["viewers_with_poses"] == 2 and report["pose_p99_ms"] > 0
    assert report["ack_p99_ms"] > 0


def test_bench_load_refuses_a_redis_db_of_the_tests():
    result = bench_load("--redis", "redis://127.0.0.1:6379/9")
    assert result.returncode != 0
    assert "db 9 belongs to a test slot" in result.stderr
