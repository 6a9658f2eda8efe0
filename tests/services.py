"""Check that PostgreSQL and Redis answer, start them where possible, and print the
environment the test suite should use (shell `export` lines).

Under CI=true a missing service is an error: the suite must run against them.
"""

import os
import socket
import subprocess
import sys
import time

POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
# TEST_SLOT=k (0 by default) gives a run its own database and Redis db, so two
# suites on one machine (a developer's and a CI clone's) don't share state.
SLOT = int(os.environ.get("TEST_SLOT", "0"))
if not 0 <= SLOT <= 7:
    sys.exit(f"TEST_SLOT={SLOT} must be 0..7")
SLOT_SUFFIX = f"_{SLOT}" if SLOT else ""
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/emg_hand_tracking{SLOT_SUFFIX}"
REDIS_URL = f"redis://127.0.0.1:6379/{15 - SLOT}"

START_COMMANDS = {
    POSTGRES: "pg_ctlcluster --skip-systemctl-redirect "
    "$(ls /etc/postgresql) main start",
    REDIS: "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' "
    "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
}


def answers(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
        return True
    except OSError:
        return False


def ensure(address: tuple[str, int]) -> bool:
    if answers(address):
        return True
    subprocess.run(START_COMMANDS[address], shell=True, capture_output=True)
    for _ in range(20):
        if answers(address):
            return True
        time.sleep(0.5)
    return False


def main() -> int:
    in_ci = os.environ.get("CI") == "true"
    up = {
        name: ensure(address)
        for name, address in (("PostgreSQL", POSTGRES), ("Redis", REDIS))
    }
    missing = [name for name, ok in up.items() if not ok]
    if missing and in_ci:
        print(
            f"echo 'error: {' and '.join(missing)} not reachable; CI needs both' >&2;"
            " exit 1"
        )
        return 0
    if missing:
        print(
            f"echo 'warning: {' and '.join(missing)} not reachable: "
            "running embedded mode' >&2"
        )
        return 0
    print(f"export DATABASE_URL={DATABASE_URL} REDIS_URL={REDIS_URL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
