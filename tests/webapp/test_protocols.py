"""The Protocols page (a user's own protocols), the session form's protocol choice
and the recording page's protocol runner data."""

from __future__ import annotations

import json

import pytest

from recorder.guided.protocols import builtin_protocols
from webapp.protocols.models import UserProtocol

pytestmark = pytest.mark.django_db


def definition(**changes) -> str:
    protocol = builtin_protocols()["calibration"].as_dict()
    protocol.update({"name": "mine", "title": "Mine", **changes})
    return json.dumps(protocol)


def test_a_user_adds_a_protocol_and_it_is_listed(alice, alice_client):
    response = alice_client.post("/protocols/", {"definition": definition()})
    assert response.status_code == 302
    row = UserProtocol.objects.get(owner=alice)
    assert row.name == "mine" and row.protocol.steps[0].gesture == "rest"
    page = alice_client.get("/protocols/").content.decode()
    assert "Mine" in page and "Calibration (1 minute)" in page


def test_a_negative_duration_is_refused_naming_the_field(alice, alice_client):
    protocol = json.loads(definition())
    protocol["steps"][1]["rest_s"] = -2
    response = alice_client.post("/protocols/", {"definition": json.dumps(protocol)})
    assert response.status_code == 200
    assert "steps[1].rest_s: must not be negative" in response.content.decode()
    assert not UserProtocol.objects.exists()


def test_a_missing_field_is_refused_naming_it(alice, alice_client):
    protocol = json.loads(definition())
    del protocol["steps"][0]["prompt"]
    response = alice_client.post("/protocols/", {"definition": json.dumps(protocol)})
    assert "steps[0].prompt: missing" in response.content.decode()


def test_broken_json_is_refused(alice_client):
    response = alice_client.post("/protocols/", {"definition": '{"name": '})
    assert "Not valid JSON" in response.content.decode()


def test_a_built_in_name_cannot_be_taken(alice_client):
    response = alice_client.post("/protocols/", {"definition": definition(name="000")})
    assert "is a built-in protocol" in response.content.decode()


def test_nobody_deletes_or_records_with_another_users_protocol(
    alice, bob, bob_client, make_subject
):
    row = UserProtocol.objects.create(
        owner=alice, name="mine", definition=json.loads(definition())
    )
    assert bob_client.post(f"/protocols/{row.pk}/delete").status_code == 404
    assert UserProtocol.objects.filter(pk=row.pk).exists()
    subject = make_subject(bob)
    response = bob_client.post(
        "/sessions/",
        {
            "subject": subject.pk,
            "band_placement": "right forearm",
            "band_rotation_deg": "0",
            "protocol_name": "mine",
        },
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_the_owner_deletes_their_protocol(alice, alice_client):
    row = UserProtocol.objects.create(
        owner=alice, name="mine", definition=json.loads(definition())
    )
    assert alice_client.post(f"/protocols/{row.pk}/delete").status_code == 302
    assert not UserProtocol.objects.exists()


def test_the_session_form_offers_built_in_and_own_protocols(
    alice, alice_client, make_subject
):
    make_subject(alice)
    UserProtocol.objects.create(
        owner=alice, name="mine", definition=json.loads(definition())
    )
    page = alice_client.get("/sessions/").content.decode()
    for name in ("free", "000", "calibration", "emg2pose-stages", "mine"):
        assert f'value="{name}"' in page


def test_a_recording_session_page_carries_the_protocol_and_target_hands(
    alice, alice_client, make_session
):
    session = make_session(
        alice,
        protocol_name="calibration",
        status="recording",
        band_placement="left forearm",
        device_info={"kind": "mindrove"},
    )
    response = alice_client.get(f"/sessions/{session.pk}/")
    runner = response.context["runner"]
    assert runner["protocol"]["name"] == "calibration" and runner["mirror"]
    assert len(runner["targets_mm"]["fist"]) == 63
    page = response.content.decode()
    assert 'id="runner-data"' in page and "protocol_runner.js" in page
    assert "MindRove SDK has an impedance mode" in page


def test_a_free_recording_has_no_protocol_runner(alice, alice_client, make_session):
    session = make_session(alice, protocol_name="free", status="recording")
    page = alice_client.get(f"/sessions/{session.pk}/").content.decode()
    assert "protocol_runner.js" not in page and 'id="protocol"' not in page


def test_before_the_first_chunk_the_agents_device_decides_the_impedance_note(
    alice, alice_client, make_session, make_token
):
    agent = make_token(alice, device_info={"kind": "simulated"})
    session = make_session(
        alice, protocol_name="calibration", status="recording", agent=agent
    )
    page = alice_client.get(f"/sessions/{session.pk}/").content.decode()
    assert "a simulated armband has no electrodes" in page
