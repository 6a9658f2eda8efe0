"""Fixtures for browser tests: the embedded system as the README starts it, and
Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.system.processes import ROOT, free_port, wait_for_port, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Anything that points the children at production services or elsewhere on disk:
# without these, settings fall back to the embedded mode under VAR_DIR.
NOT_INHERITED = (
    "DATABASE_URL",
    "REDIS_URL",
    "MEDIA_ROOT",
    "CHUNK_STORE_DIR",
    "STATIC_ROOT",
    "CELERY_TASK_ALWAYS_EAGER",
    "DJANGO_SETTINGS_MODULE",
)


class EmbeddedSystem:
    """`python manage.py run_embedded` in its own process group, output to a log."""

    def __init__(self, var_dir: Path, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        env.update(VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
        self._log = open(log_path, "ab")
        self.popen = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_embedded",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 40) -> None:
        def running():
            if self.popen.poll() is not None:
                raise RuntimeError(f"run_embedded exited ({self.popen.returncode})")
            return "is running at" in self.log()

        wait_until(running, timeout_s, "run_embedded to say it is running")
        wait_for_port(self.port, timeout_s)

    def stop(self) -> None:
        self.begin_stop()
        self.finish_stop()

    def begin_stop(self) -> None:
        """SIGTERM to the group: run_embedded stops its children (Celery's warm
        shutdown takes ~5 s of mostly idle waiting)."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def finish_stop(self) -> None:
        """Wait for the graceful stop, then kill whatever of the group is left."""
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        try:  # whatever of the group is left (children outlive a killed parent)
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=10)
        self._log.close()


@pytest.fixture(scope="package")
def stopping_systems():
    """Embedded systems told to stop, finished after the last browser test: their
    graceful shutdowns wait while the next tests run instead of before them."""
    systems: list[EmbeddedSystem] = []
    yield systems
    for system in systems:
        system.finish_stop()
        if system.popen.returncode not in (0, -15):
            print(f"\n----- run_embedded log ({system.log_path}), exit code "
                  f"{system.popen.returncode} -----\n{system.log()}")  # fmt: skip


@pytest.fixture
def embedded_system(tmp_path, request, stopping_systems):
    system = EmbeddedSystem(tmp_path / "var", tmp_path / "run_embedded.log")
    try:
        system.wait_ready()
        yield system
    finally:
        system.begin_stop()
        stopping_systems.append(system)
        call = getattr(request.node, "rep_call", None)  # None: setup failed
        if call is None or call.failed:
            print(f"\n----- run_embedded log ({system.log_path}) -----\n{system.log()}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def chromium_page(tmp_path):
    """A fresh Chromium page; its console messages and page errors are collected in
    `page.js_messages` and printed at the end."""
    if not Path(CHROMIUM).exists():
        message = (
            f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    messages: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            page = context.new_page()
            page.on("console", lambda m: messages.append(f"console.{m.type}: {m.text}"))
            page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
            page.on(
                "requestfailed",
                lambda r: messages.append(
                    f"requestfailed: {r.method} {r.url} {r.failure}"
                ),
            )
            page.route(
                re.compile(r"^(?!https?://127\.0\.0\.1[:/]|wss?://127\.0\.0\.1[:/])"),
                lambda route: route.abort(),
            )
            page.js_messages = messages
            yield page
        finally:
            if messages:
                print("\n----- browser console -----\n" + "\n".join(messages))
            browser.close()
