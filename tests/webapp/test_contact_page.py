"""The recording page offers the electrode contact check for the MindRove armband
only (the other devices have no impedance mode)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("kind, offered", [("mindrove", True), ("simulated", False)])
def test_the_contact_check_is_offered_for_the_armband_only(
    kind, offered, alice, alice_client, make_session
):
    session = make_session(
        alice,
        protocol_name="calibration",
        status="recording",
        device_info={"kind": kind},
    )
    page = alice_client.get(f"/sessions/{session.pk}/").content.decode()
    assert ('id="contact-check-button"' in page) == offered
