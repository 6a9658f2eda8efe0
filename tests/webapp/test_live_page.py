"""The live hand page: reached from the session page, offered the user's complete
models only, and nobody else's session."""

from __future__ import annotations

import pytest

from webapp.registry.models import TrainingRun


@pytest.fixture
def make_model(storage):
    def make(owner, name: str, status=TrainingRun.Status.COMPLETE) -> TrainingRun:
        run = TrainingRun.objects.create(
            owner=owner, name=name, model_name="tcn", status=status
        )
        run.folder.mkdir(parents=True)
        run.checkpoint_path.write_bytes(b"weights")
        return run

    return make


def test_the_session_page_links_to_the_live_hand(alice, alice_client, make_session):
    session = make_session(alice, status="recording")
    page = alice_client.get(f"/sessions/{session.pk}/").content.decode()
    assert f'id="hand-link" href="/sessions/{session.pk}/hand/"' in page


def test_the_page_offers_the_users_complete_models_only(
    alice, bob, alice_client, make_session, make_model
):
    session = make_session(alice, status="recording")
    mine = make_model(alice, "fast tcn")
    make_model(alice, "half-trained", status=TrainingRun.Status.RUNNING)
    make_model(bob, "bob's model")
    response = alice_client.get(f"/sessions/{session.pk}/hand/")
    assert response.status_code == 200
    assert [m["id"] for m in response.context["models"]] == [mine.pk]
    page = response.content.decode()
    assert '"three": "/static/vendor/three/three.module.js"' in page
    assert f'data-ws-path="/ws/sessions/{session.pk}/hand/"' in page


def test_a_model_without_its_checkpoint_file_is_not_offered(
    alice, alice_client, make_session, make_model
):
    session = make_session(alice)
    make_model(alice, "lost weights").checkpoint_path.unlink()
    response = alice_client.get(f"/sessions/{session.pk}/hand/")
    assert response.context["models"] == []
    assert "no complete model yet" in response.content.decode()


def test_bob_cannot_open_alices_live_hand(alice, bob_client, make_session):
    session = make_session(alice, status="recording")
    assert bob_client.get(f"/sessions/{session.pk}/hand/").status_code == 404
