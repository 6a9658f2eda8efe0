"""Fine-tune jobs in the portal: a complete model adapted to one person's labeled
calibration session, through the page, the task (called directly, real database)
and the registry; and the refusals that keep it to one's own models and sessions."""

from __future__ import annotations

import functools
import shutil

import pytest

from inference import LivePredictor
from tests.training.sessions import labeled_recording, with_channels
from training.checkpoint import read_checkpoint
from training.data import from_recording
from training.trainer import TrainConfig, train
from webapp.live.db import usable_runs
from webapp.registry.models import TrainingRun
from webapp.registry.tasks import train_model

TINY_TCN = {"filters": 8, "hidden": 16, "dilations": (1, 2, 4)}


@functools.cache
def recording(subject: int, session: int = 0, seconds: float = 6.0):
    return labeled_recording(seconds, subject_seed=subject, session=session)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny tcn's final.pt, trained once per module on simulated person 1."""
    config = TrainConfig(model="tcn", model_config=TINY_TCN, epochs=1, batch_size=64,
                         stride_samples=25, device="cpu")  # fmt: skip
    train_part = [from_recording(recording(1), "a")]
    held_out = [from_recording(recording(1, session=1, seconds=4.0), "b")]
    out_dir = tmp_path_factory.mktemp("pretrained")
    return train(config, train_part, held_out, out_dir).final_checkpoint


@pytest.fixture
def make_model(pretrained, storage):
    """A complete registry model of `owner`, holding the pre-trained checkpoint."""

    def make(owner, **fields) -> TrainingRun:
        fields = {"status": "complete"} | fields
        run = TrainingRun.objects.create(
            owner=owner, name="pre-trained", model_name="tcn", epochs=1, **fields
        )
        run.folder.mkdir(parents=True)
        shutil.copy(pretrained, run.checkpoint_path)
        return run

    return make


@pytest.fixture
def base(alice, make_model):
    return make_model(alice)


@pytest.fixture
def calibration(make_labeled_session):
    """Alice's new person's calibration recording (simulated person 2)."""
    return make_labeled_session(recording(2, seconds=8.0))


def start(client, base, calibration, capture, **changes):
    data = {"calibration_session": calibration.pk, "epochs": 2,
            "learning_rate": 3e-4, "name": ""} | changes  # fmt: skip
    with capture() as queued:
        response = client.post(f"/models/{base.pk}/finetune", data)
    return response, queued


def messages_of(response) -> list[str]:
    from django.contrib.messages import get_messages

    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_owner_fine_tunes_a_model_into_a_new_registry_entry(
    base, calibration, alice, alice_client, django_capture_on_commit_callbacks
):
    response, queued = start(alice_client, base, calibration,
                             django_capture_on_commit_callbacks)  # fmt: skip
    assert messages_of(response) == []
    run = TrainingRun.objects.get(base=base)
    assert response.status_code == 302 and response.url == f"/models/{run.pk}/"
    assert len(queued) == 1
    assert (run.status, run.model_name, run.epochs) == ("queued", "tcn", 2)
    assert run.config == {"learning_rate": 3e-4}
    assert list(run.train_sessions.all()) == [calibration]
    assert run.name == f"pre-trained for {calibration.subject}"

    assert train_model(run.pk) == "complete"
    run.refresh_from_db()
    assert run.error == "" and [h["epoch"] for h in run.history] == [1, 2]
    assert run.metrics["model"]["mpjpe_mm"] > 0 and run.parameters > 0
    assert "fine-tuning pre-trained (tcn)" in run.log_tail
    assert "the last 20% of the calibration" in run.log_tail
    contents = read_checkpoint(run.checkpoint_path)
    assert contents["finetuned_from"]["checkpoint"] == str(base.checkpoint_path)
    assert contents["data"]["train_sessions"] == [f"#{calibration.pk} (first 80%)"]
    # the live page offers it, and its predictor runs it
    assert run in usable_runs(alice)
    predictor = LivePredictor.from_checkpoint(run.checkpoint_path)
    poses = predictor.push(recording(2).emg[:1000], 1_000.0)  # 2 s of the person
    assert len(poses) > 60


def test_the_pages_show_the_job_and_where_it_came_from(
    base, calibration, alice_client, django_capture_on_commit_callbacks
):
    page = alice_client.get(f"/models/{base.pk}/").content.decode()
    assert 'id="start-finetune"' in page and f'value="{calibration.pk}"' in page
    start(alice_client, base, calibration, django_capture_on_commit_callbacks)
    run = TrainingRun.objects.get(base=base)
    page = alice_client.get(f"/models/{run.pk}/").content.decode()
    assert 'id="finetuned-from"' in page and f'href="/models/{base.pk}/"' in page
    assert "the calibration's last 20%" in page
    assert f"/models/{run.pk}/status" in page  # the training page's live progress
    base_page = alice_client.get(f"/models/{base.pk}/").content.decode()
    assert f'href="/models/{run.pk}/"' in base_page
    registry = alice_client.get("/models/").content.decode()
    assert f'fine-tuned from <a href="/models/{base.pk}/">' in registry


def test_a_held_out_session_of_the_person_validates_it(
    base, calibration, make_labeled_session, alice_client,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    later = make_labeled_session(recording(2, session=1, seconds=4.0))
    start(alice_client, base, calibration, django_capture_on_commit_callbacks,
          held_out_session=later.pk)  # fmt: skip
    run = TrainingRun.objects.get(base=base)
    assert list(run.validation_sessions.all()) == [later]
    assert train_model(run.pk) == "complete"
    data = read_checkpoint(run.checkpoint_path)["data"]
    assert data["validation_sessions"] == [f"#{later.pk}"]


def test_another_users_model_cannot_be_fine_tuned(
    bob, make_model, calibration, alice_client, django_capture_on_commit_callbacks
):
    bobs = make_model(bob)
    response, queued = start(alice_client, bobs, calibration,
                             django_capture_on_commit_callbacks)  # fmt: skip
    assert response.status_code == 404 and not queued
    assert not TrainingRun.objects.filter(base=bobs).exists()


def test_another_users_session_is_refused_by_name(
    base, bob, make_labeled_session, alice_client, django_capture_on_commit_callbacks
):
    bobs_session = make_labeled_session(recording(2), owner=bob)
    response, queued = start(alice_client, base, bobs_session,
                             django_capture_on_commit_callbacks)  # fmt: skip
    assert response.status_code == 302 and response.url == f"/models/{base.pk}/"
    assert not queued and not TrainingRun.objects.filter(base=base).exists()
    assert messages_of(response) == [
        "Fine-tuning not started: Choose one of your own sessions that has a file; "
        "that session is not one of them."
    ]


def test_a_model_that_is_not_complete_is_refused(
    alice, make_model, calibration, alice_client, django_capture_on_commit_callbacks
):
    running = make_model(alice, status="running")
    response, queued = start(alice_client, running, calibration,
                             django_capture_on_commit_callbacks)  # fmt: skip
    assert not queued and not TrainingRun.objects.filter(base=running).exists()
    assert messages_of(response) == ["Only a complete model can be fine-tuned."]


def test_the_same_session_cannot_calibrate_and_validate(
    base, calibration, alice_client, django_capture_on_commit_callbacks
):
    response, queued = start(alice_client, base, calibration,
                             django_capture_on_commit_callbacks,
                             held_out_session=calibration.pk)  # fmt: skip
    assert not queued
    assert f"Session #{calibration.pk} cannot be both" in messages_of(response)[0]


def test_a_session_of_another_armband_fails_the_job_with_a_clear_message(
    base, make_labeled_session, alice_client, django_capture_on_commit_callbacks
):
    four = make_labeled_session(with_channels(recording(2), 4))
    start(alice_client, base, four, django_capture_on_commit_callbacks)
    run = TrainingRun.objects.get(base=base)
    assert train_model(run.pk) == "failed"
    run.refresh_from_db()
    assert run.error == (
        f"the base model expects 8 EMG channels, session #{four.pk} (first 80%) has 4"
    )


def test_a_base_model_is_kept_while_a_fine_tuned_one_needs_it(
    base, calibration, alice_client, django_capture_on_commit_callbacks
):
    from django.db.models import ProtectedError

    start(alice_client, base, calibration, django_capture_on_commit_callbacks)
    with pytest.raises(ProtectedError):
        base.delete()
