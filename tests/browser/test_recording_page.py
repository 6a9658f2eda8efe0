"""A person records a session in a real browser, against the system started the way
the README's quick start starts it (`python manage.py run_embedded`): log in, create a
session, start the connected simulated agent, watch the traces, stop, download the
file."""

import re
import shutil
import time

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
NUM_CHANNELS = 8


def samples_drawn(page) -> int:
    value = page.locator("#live").get_attribute("data-samples-drawn", timeout=2_000)
    return int(value or 0)


def wait_for_traces_to_move(page, timeout_s: float = 20) -> tuple[int, int]:
    """Two reads of the samples drawn, the second larger than the first (> 0)."""
    deadline = time.monotonic() + timeout_s
    first = 0
    while time.monotonic() < deadline:
        try:
            drawn = samples_drawn(page)
        except Exception:  # the page may be reloading (status change): read again
            drawn = 0
        if first and drawn > first:
            return first, drawn
        first = first or drawn
        page.wait_for_timeout(300)
    raise AssertionError(
        f"the traces did not move within {timeout_s} s (drawn: {first})"
    )


def test_record_a_session_in_the_browser(embedded_system, chromium_page, tmp_path):
    page, base = chromium_page, embedded_system.url
    started = time.monotonic()

    # log in as the demo user that run_embedded made
    page.goto(f"{base}/login/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", "demo-hand-2026")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/sessions/$"))

    # a new session, from the form on the sessions page
    page.goto(f"{base}/sessions/")
    page.select_option("#id_subject", label="Demo subject")
    page.fill("#id_band_placement", "right forearm, 5 cm below the elbow")
    page.fill("#id_band_rotation_deg", "0")
    page.select_option("#id_protocol_name", "free")
    page.click("text=Create session")
    expect(page).to_have_url(re.compile(r"/sessions/\d+/$"))
    session_id = int(re.search(r"/sessions/(\d+)/$", page.url).group(1))
    expect(page.locator("#status")).to_have_text("Ready to record")

    # the simulated agent connects within seconds; the page reloads to offer it
    expect(page.locator("#start")).to_be_enabled(timeout=30_000)
    agent_option = page.locator("#agent-select option").first
    expect(agent_option).to_have_attribute("value", re.compile(r"^\d+$"))
    page.select_option("#agent-select", index=0)
    page.click("#start")
    expect(page.locator("#status")).to_have_text("Recording", timeout=10_000)

    # the traces move and every channel has a quality verdict
    first, second = wait_for_traces_to_move(page)
    expect(page.locator("#quality tbody tr")).to_have_count(
        NUM_CHANNELS, timeout=15_000
    )
    expect(page.locator("#traces .uplot")).to_have_count(NUM_CHANNELS)
    page.wait_for_timeout(1_000)  # a little more trace on screen for the picture
    screenshot = tmp_path / "recording_page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    shutil.copy(screenshot, "/tmp/recording_page.png")
    print(f"\nsamples drawn {first} -> {second}; screenshot {screenshot}")

    # stop; the worker assembles the file and the page reloads itself on each status
    page.click("#stop")
    expect(page.locator("#status")).to_have_text("Complete", timeout=30_000)

    # the file is listed on the sessions page and downloads as HDF5
    page.goto(f"{base}/sessions/")
    link = page.locator("a.download", has_text=f"session-{session_id}.h5")
    expect(link).to_have_count(1)
    response = page.request.get(f"{base}{link.get_attribute('href')}")
    assert response.ok, response.status
    body = response.body()
    assert len(body) > len(HDF5_SIGNATURE)
    assert body.startswith(HDF5_SIGNATURE), body[:16]
    assert not [m for m in page.js_messages if m.startswith("pageerror")], (
        page.js_messages
    )
    print(
        f"session {session_id}: {len(body)} bytes of HDF5; "
        f"browser part took {time.monotonic() - started:.1f} s"
    )
