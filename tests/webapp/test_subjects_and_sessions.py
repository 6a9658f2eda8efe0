"""Creating subjects and sessions, and what the session list shows."""

import pytest

from webapp.recordings.models import RecordingSession, Subject

pytestmark = pytest.mark.django_db


def session_form(subject, **overrides) -> dict:
    return {
        "subject": subject.pk,
        "band_placement": "left forearm, 4 cm below the elbow",
        "band_rotation_deg": "15",
        "protocol_name": "calibration",
        "notes": "",
        **overrides,
    }


def test_a_new_subject_is_listed(alice, alice_client):
    response = alice_client.post(
        "/subjects/", {"name": "Ann", "handedness": "left", "notes": "wears a watch"}
    )
    assert response.status_code == 302
    subject = Subject.objects.get(owner=alice, name="Ann")
    assert (subject.handedness, subject.notes) == ("left", "wears a watch")
    page = alice_client.get("/subjects/").content.decode()
    assert "Ann" in page and "Left" in page and "wears a watch" in page


def test_it_refuses_a_duplicate_subject_name(alice, alice_client, make_subject):
    make_subject(alice, name="Ann")
    response = alice_client.post("/subjects/", {"name": " Ann ", "handedness": "right"})
    assert response.status_code == 200
    assert response.context["form"].errors["name"] == [
        "You already have a subject called 'Ann'."
    ]
    assert Subject.objects.filter(owner=alice).count() == 1


def test_two_users_may_each_have_a_subject_of_the_same_name(
    alice, bob_client, make_subject
):
    make_subject(alice, name="Ann")
    assert (
        bob_client.post(
            "/subjects/", {"name": "Ann", "handedness": "right"}
        ).status_code
        == 302
    )
    assert Subject.objects.filter(name="Ann").count() == 2


def test_the_sessions_page_asks_for_a_subject_first(alice_client):
    page = alice_client.get("/sessions/").content.decode()
    assert "add a subject" in page
    assert "Create session" not in page


def test_creating_a_session_leads_to_its_page(alice, alice_client, make_subject):
    subject = make_subject(alice)
    response = alice_client.post("/sessions/", session_form(subject))
    session = RecordingSession.objects.get(owner=alice)
    assert response.status_code == 302
    assert response["Location"] == f"/sessions/{session.pk}/"
    assert session.subject == subject
    assert session.band_placement == "left forearm, 4 cm below the elbow"
    assert session.band_rotation_deg == 15.0
    assert session.protocol_name == "calibration"
    assert session.status == RecordingSession.Status.CREATED
    assert alice_client.get(response["Location"]).status_code == 200


@pytest.mark.parametrize("rotation", ["181", "-180.5", "720", "nan", "inf"])
def test_it_refuses_a_rotation_out_of_range(
    alice, alice_client, make_subject, rotation
):
    subject = make_subject(alice)
    response = alice_client.post(
        "/sessions/", session_form(subject, band_rotation_deg=rotation)
    )
    assert response.status_code == 200
    assert "band_rotation_deg" in response.context["form"].errors
    assert not RecordingSession.objects.exists()


@pytest.mark.parametrize("rotation", ["-180", "180"])
def test_it_accepts_the_ends_of_the_rotation_range(
    alice, alice_client, make_subject, rotation
):
    subject = make_subject(alice)
    assert (
        alice_client.post(
            "/sessions/", session_form(subject, band_rotation_deg=rotation)
        ).status_code
        == 302
    )


def test_it_refuses_another_users_subject(alice, bob, bob_client, make_subject):
    make_subject(bob, name="Bo")  # so bob sees the form
    alices = make_subject(alice, name="Ann")
    response = bob_client.post("/sessions/", session_form(alices))
    assert response.status_code == 200
    assert "subject" in response.context["form"].errors
    assert not RecordingSession.objects.exists()
    assert "Ann" not in response.content.decode()  # not even offered


def test_the_session_list_shows_the_recordings_facts(
    alice, alice_client, make_session, storage
):
    session = make_session(
        alice,
        status=RecordingSession.Status.COMPLETE,
        device_info={"kind": "simulated"},
        duration_s=12.34,
        sample_count=6170,
        dropped_packets=3,
    )
    path = storage / "media" / "sessions" / f"session-{session.pk}.h5"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x89HDF\r\n\x1a\n fake")
    session.file = f"sessions/session-{session.pk}.h5"
    session.save()

    page = alice_client.get("/sessions/").content.decode()
    assert 'class="status complete">Complete<' in page
    assert ">simulated<" in page
    assert "12.3 s" in page
    assert ">6170<" in page
    assert ">3<" in page
    assert f'href="/sessions/{session.pk}/download"' in page


def test_the_session_list_has_no_download_link_before_the_file(
    alice, alice_client, make_session
):
    session = make_session(alice)
    page = alice_client.get("/sessions/").content.decode()
    assert f"/sessions/{session.pk}/" in page
    assert f"/sessions/{session.pk}/download" not in page
    assert 'class="status created">Ready to record<' in page
