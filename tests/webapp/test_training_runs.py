"""Training runs and the model registry: the task called directly on tiny simulated
sessions, cancelling, resuming an interrupted run, bad input, and the pages."""

from __future__ import annotations

import functools
import shutil
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from celery.exceptions import Retry
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.messages import get_messages
from django.db import connections
from django.utils import timezone

from tests.training.sessions import (
    labeled_recording,
    unlabeled,
    with_channels,
    without_labels,
)
from training.trainer import resolve_device
from webapp.celery import app as celery_app
from webapp.processes import worker_command
from webapp.registry.models import TrainingRun
from webapp.registry.progress import RunReporter, push_epoch
from webapp.registry.tasks import train_model

MODEL = "v5"
EPOCHS = 3
SECONDS = 4.0  # of simulated recording per session
CONFIG = {"batch_size": 64, "stride_samples": 25}  # few windows: quick epochs
RESULT_FIELDS = ("status", "epoch", "history", "log_tail", "stop_reason", "device",
                 "parameters", "metrics", "started_at", "finished_at")  # fmt: skip


@functools.cache
def recording(session: int):
    """Session `session` of simulated subject 0, labeled with the truth."""
    return labeled_recording(SECONDS, subject_seed=0, session=session)


@pytest.fixture
def sessions(make_labeled_session):
    """Alice's three labeled sessions: two to train on, one to hold out."""
    return [make_labeled_session(recording(k)) for k in range(3)]


def make_run(train, held_out, epochs: int = EPOCHS, **fields) -> TrainingRun:
    run = TrainingRun.objects.create(
        owner=train[0].owner, model_name=MODEL, epochs=epochs, config=CONFIG, **fields
    )
    run.train_sessions.set(train)
    run.validation_sessions.set(held_out)
    return run


def run_task(run: TrainingRun) -> TrainingRun:
    train_model(run.pk)
    run.refresh_from_db()
    return run


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """The first `trained` run's folder and fields, for the later ones to copy."""
    return {"folder": tmp_path_factory.mktemp("trained") / "run", "fields": {}}


@pytest.fixture
def trained(sessions, finished_run):
    """Alice's complete run: 3 epochs of v5 on two sessions, one held out. The task
    trains it once per module; later tests get a copy of its folder and results."""
    run = make_run(sessions[:2], sessions[2:])
    if finished_run["fields"]:
        shutil.copytree(finished_run["folder"], run.folder)
        TrainingRun.objects.filter(pk=run.pk).update(**finished_run["fields"])
        run.refresh_from_db()
        return run
    run = run_task(run)
    assert run.status == "complete", run.error
    shutil.copytree(run.folder, finished_run["folder"])
    finished_run["fields"] = {name: getattr(run, name) for name in RESULT_FIELDS}
    return run


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


class WorkerKilled(BaseException):
    """Ends the task the way a killed worker does: nothing after it runs."""


# ------------------------------------------------------------------ the task


def test_a_run_trains_and_is_evaluated_beside_the_baseline(sessions):
    trained = run_task(make_run(sessions[:2], sessions[2:]))
    assert trained.status == "complete", trained.error
    assert trained.epoch == EPOCHS and trained.stop_reason == "completed"
    assert [h["epoch"] for h in trained.history] == [1, 2, 3]
    assert all(h["val_mpjpe_mm"] > 0 for h in trained.history)
    model, baseline = trained.metrics["model"], trained.metrics["baseline"]
    assert model["mpjpe_mm"] > 0 and baseline["mpjpe_mm"] > 0
    assert len(model["per_joint_mpjpe_mm"]) == len(baseline["per_joint_mpjpe_mm"]) == 21
    assert trained.metrics["windows"] > 0
    assert trained.checkpoint_path.is_file() and trained.parameters > 0
    assert trained.device == str(resolve_device("auto"))
    assert trained.finished_at is not None
    assert "epoch 3/3" in trained.log_tail and "baseline" in trained.log_tail


def test_the_run_page_shows_metrics_baseline_and_downloads(trained, alice_client):
    page = alice_client.get(f"/models/{trained.pk}/").content.decode()
    assert "Mean-pose baseline" in page and 'id="per-joint"' in page
    assert f"{trained.mpjpe_mm:.2f} mm" in page
    assert f"{trained.baseline_mpjpe_mm:.2f} mm" in page
    assert f"/models/{trained.pk}/download" in page and 'id="resume"' not in page
    registry = alice_client.get("/models/").content.decode()
    assert f'href="/models/{trained.pk}/"' in registry
    assert f"{trained.mpjpe_mm:.1f} mm" in registry


def test_the_run_page_polls_each_second_only_where_epochs_cannot_be_pushed(
    trained, alice_client, settings
):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}
    }
    assert (
        'data-poll-ms="3000"'
        in alice_client.get(f"/models/{trained.pk}/").content.decode()
    )
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    }
    assert (
        'data-poll-ms="1000"'
        in alice_client.get(f"/models/{trained.pk}/").content.decode()
    )


def test_the_status_json_has_every_epoch(trained, alice_client):
    status = alice_client.get(f"/models/{trained.pk}/status").json()
    assert status["status"] == "complete" and status["epoch"] == EPOCHS
    assert [h["epoch"] for h in status["history"]] == [1, 2, 3]
    assert status["metrics"]["model"]["mpjpe_mm"] == trained.mpjpe_mm
    assert status["seconds_left"] is None and status["error"] == ""


def test_the_owner_downloads_the_checkpoint(trained, alice_client):
    response = alice_client.get(f"/models/{trained.pk}/download")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == trained.checkpoint_path.read_bytes()
    assert response["Content-Disposition"] == (
        f'attachment; filename="model-{trained.pk}.pt"'
    )
    response.close()


@pytest.mark.parametrize("fmt,suffix", [("torchscript", "torchscript.pt"),
                                        ("onnx", "onnx")])  # fmt: skip
def test_the_model_exports_and_the_export_downloads(trained, alice_client, fmt, suffix):
    response = alice_client.post(f"/models/{trained.pk}/export/{fmt}")
    assert response.status_code == 302
    assert "matches the PyTorch model" in messages_of(response)[0]
    trained.refresh_from_db()
    assert 0 <= trained.exports[fmt]["max_abs_diff_mm"] <= 1e-2
    page = alice_client.get(f"/models/{trained.pk}/").content.decode()
    assert f"/models/{trained.pk}/download/{fmt}" in page
    download = alice_client.get(f"/models/{trained.pk}/download/{fmt}")
    assert download.status_code == 200 and len(b"".join(download.streaming_content))
    assert f'filename="model-{trained.pk}.{suffix}"' in download["Content-Disposition"]
    download.close()


def test_an_export_not_yet_made_is_not_offered(trained, alice_client):
    assert alice_client.get(f"/models/{trained.pk}/download/onnx").status_code == 404
    assert alice_client.post(f"/models/{trained.pk}/export/pickle").status_code == 404


def test_a_redelivered_task_for_a_finished_run_does_nothing(trained):
    modified_ns = trained.checkpoint_path.stat().st_mtime_ns
    assert train_model(trained.pk) == "complete"
    trained.refresh_from_db()
    assert len(trained.history) == EPOCHS
    assert trained.checkpoint_path.stat().st_mtime_ns == modified_ns


def test_training_goes_to_the_training_queue_which_the_embedded_worker_serves():
    route = celery_app.amqp.router.route({}, train_model.name)
    assert route["queue"].name == "training"
    assert "training" in worker_command()[worker_command().index("-Q") + 1].split(",")


def test_a_task_leaves_a_run_that_another_worker_trains_alone(sessions):
    run = make_run(sessions[:2], sessions[2:], status="running",
                   heartbeat_at=timezone.now())  # fmt: skip
    with pytest.raises(Retry):  # looks again once the run could be stale
        train_model(run.pk)
    assert not run.folder.exists()
    run.refresh_from_db()
    assert run.status == "running"


# ------------------------------------------------------------------ cancel, resume


def test_cancelling_a_queued_run_ends_it_before_it_starts(sessions, alice_client):
    run = make_run(sessions[:2], sessions[2:])
    alice_client.post(f"/models/{run.pk}/cancel")
    run = run_task(run)
    assert run.status == "cancelled" and run.epoch == 0
    assert not run.folder.exists()


def test_cancel_stops_a_running_run_after_the_epoch(
    sessions, alice_client, monkeypatch
):
    report_epoch = RunReporter.progress

    def owner_cancels_during_the_epoch(reporter, epoch, metrics):
        report_epoch(reporter, epoch, metrics)
        alice_client.post(f"/models/{reporter.run_id}/cancel")

    monkeypatch.setattr(RunReporter, "progress", owner_cancels_during_the_epoch)
    run = run_task(make_run(sessions[:2], sessions[2:]))
    assert run.status == "cancelled" and run.cancel_requested
    assert run.epoch == 1 and len(run.history) == 1
    assert (run.folder / "last.pt").is_file() and not run.checkpoint_path.exists()
    assert "cancelled" in run.log_tail


def test_an_interrupted_run_resumes_from_its_last_epoch(
    sessions, alice_client, monkeypatch, django_capture_on_commit_callbacks
):
    report_epoch = RunReporter.progress

    def worker_dies_after_epoch_one(reporter, epoch, metrics):
        report_epoch(reporter, epoch, metrics)
        raise WorkerKilled

    monkeypatch.setattr(RunReporter, "progress", worker_dies_after_epoch_one)
    run = make_run(sessions[:2], sessions[2:])
    with pytest.raises(WorkerKilled):
        train_model(run.pk)
    monkeypatch.setattr(RunReporter, "progress", report_epoch)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=an_hour_ago)

    # the page never shows a dead worker's run as running
    status = alice_client.get(f"/models/{run.pk}/status").json()
    assert status["status"] == "interrupted" and status["epoch"] == 1
    page = alice_client.get(f"/models/{run.pk}/").content.decode()
    assert 'id="resume"' in page and "Resume after epoch 1" in page

    with django_capture_on_commit_callbacks() as queued:
        alice_client.post(f"/models/{run.pk}/resume")
    run.refresh_from_db()
    assert run.status == "queued" and len(queued) == 1
    run = run_task(run)  # what the queued task does on a worker
    assert run.status == "complete", run.error
    assert [h["epoch"] for h in run.history] == [1, 2, 3]
    assert "resuming" in run.log_tail


def test_a_stale_run_is_interrupted_in_the_registry(sessions, alice_client):
    an_hour_ago = timezone.now() - timedelta(hours=1)
    run = make_run(sessions[:2], sessions[2:], status="running",
                   heartbeat_at=an_hour_ago)  # fmt: skip
    page = alice_client.get("/models/").content.decode()
    assert 'class="status interrupted"' in page
    run.refresh_from_db()
    assert run.status == "interrupted"


def test_a_finished_run_does_not_resume(trained, alice_client):
    response = alice_client.post(f"/models/{trained.pk}/resume")
    assert "Only an interrupted or failed run" in messages_of(response)[0]
    trained.refresh_from_db()
    assert trained.status == "complete"


# ------------------------------------------------------------------ bad input


def test_a_session_that_was_never_labeled_fails_with_a_clear_message(
    sessions, make_labeled_session, alice_client
):
    raw = make_labeled_session(unlabeled(recording(0)))
    run = run_task(make_run([raw], sessions[2:]))
    assert run.status == "failed"
    assert (
        run.error == f"session #{raw.pk}: has no hand-pose labels yet; label it first"
    )
    page = alice_client.get(f"/models/{run.pk}/").content.decode()
    assert "has no hand-pose labels yet" in page


def test_a_session_without_a_label_track_fails_with_a_clear_message(
    sessions, make_labeled_session
):
    raw = make_labeled_session(without_labels(recording(0)))
    run = run_task(make_run(sessions[:1], [raw]))
    assert run.status == "failed" and f"#{raw.pk}: has no label track" in run.error


def test_mismatched_channel_counts_fail_with_a_clear_message(
    sessions, make_labeled_session
):
    wide = make_labeled_session(with_channels(recording(1), 16))
    run = run_task(make_run([sessions[0], wide], sessions[2:]))
    assert run.status == "failed"
    assert f"#{wide.pk} has 16 channels" in run.error and "8" in run.error


def test_a_corrupt_session_file_fails_with_a_clear_message(sessions):
    with open(sessions[0].file.path, "r+b") as handle:
        handle.write(b"this is not HDF5 any more")
    run = run_task(make_run(sessions[:2], sessions[2:]))
    assert run.status == "failed" and "cannot read this session file" in run.error
    assert str(sessions[0].file.storage.location) not in run.error


def test_a_corrupt_checkpoint_is_not_downloaded(trained, alice_client):
    with open(trained.checkpoint_path, "r+b") as handle:
        handle.seek(200)
        handle.write(b"\0damaged\0" * 50)
    response = alice_client.get(f"/models/{trained.pk}/download")
    assert response.status_code == 302 and response.url == f"/models/{trained.pk}/"
    assert "the file is damaged" in messages_of(response)[0]


def test_a_corrupt_checkpoint_is_not_exported(trained, alice_client):
    trained.checkpoint_path.write_bytes(b"not a checkpoint")
    response = alice_client.post(f"/models/{trained.pk}/export/torchscript")
    message = messages_of(response)[0]
    assert message.startswith("The TorchScript export failed: ")
    assert "not a readable checkpoint" in message
    trained.refresh_from_db()
    assert trained.exports == {}


def test_a_missing_checkpoint_is_explained(trained, alice_client):
    trained.checkpoint_path.unlink()
    response = alice_client.get(f"/models/{trained.pk}/download")
    assert "the file is missing" in messages_of(response)[0]


# ------------------------------------------------------------------ the form


def form_data(train, held_out, **changes) -> dict:
    data = {
        "train_sessions": [s.pk for s in train],
        "validation_sessions": [s.pk for s in held_out],
        "model_name": MODEL,
        "epochs": 5,
        "batch_size": 32,
        "name": "first try",
    }
    return data | changes


def test_the_form_starts_a_run(
    sessions, alice_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = alice_client.post(
            "/models/train/", form_data(sessions[:2], sessions[2:])
        )
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response.url == f"/models/{run.pk}/"
    assert len(queued) == 1
    assert (run.name, run.model_name, run.epochs, run.status) == (
        "first try", MODEL, 5, "queued"
    )  # fmt: skip
    assert run.config == {"batch_size": 32}
    assert set(run.train_sessions.all()) == set(sessions[:2])
    assert list(run.validation_sessions.all()) == [sessions[2]]
    assert alice_client.get(f"/models/{run.pk}/").status_code == 200


def test_the_form_offers_the_model_zoo_and_preselects_a_session(sessions, alice_client):
    from training.models import MODEL_NAMES

    response = alice_client.get(f"/models/train/?session={sessions[1].pk}")
    form = response.context["form"]
    assert [name for name, _ in form.fields["model_name"].choices] == list(MODEL_NAMES)
    assert form["train_sessions"].value() == [str(sessions[1].pk)]


@pytest.mark.parametrize(
    "changes,problem",
    [
        ({"validation_sessions": []}, "This field is required."),
        ({"train_sessions": []}, "This field is required."),
        ("overlap", "cannot be both trained on and held out"),
        ({"epochs": 0}, "greater than or equal to 1"),
        ({"model_name": "gpt"}, "Select a valid choice"),
    ],
)
def test_the_form_refuses_bad_choices(sessions, alice_client, changes, problem):
    if changes == "overlap":
        changes = {"validation_sessions": [sessions[1].pk, sessions[2].pk]}
    response = alice_client.post(
        "/models/train/", form_data(sessions[:2], sessions[2:], **changes)
    )
    assert response.status_code == 200 and problem in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_the_form_refuses_a_session_without_a_label_track(
    sessions, make_labeled_session, alice_client
):
    raw = make_labeled_session(without_labels(recording(0)))
    response = alice_client.post("/models/train/", form_data([raw], sessions[2:]))
    assert f"Session #{raw.pk} has no label track" in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_the_form_refuses_mismatched_channel_counts(
    sessions, make_labeled_session, alice_client
):
    wide = make_labeled_session(with_channels(recording(1), 16))
    response = alice_client.post("/models/train/", form_data([wide], sessions[2:]))
    assert "different channel counts" in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_the_form_offers_only_ones_own_sessions_with_a_file(
    sessions, bob, make_labeled_session, make_session, alice, alice_client
):
    bobs = make_labeled_session(recording(0), owner=bob)
    make_session(alice)  # no file yet
    form = alice_client.get("/models/train/").context["form"]
    assert set(form.fields["train_sessions"].queryset) == set(sessions)
    response = alice_client.post("/models/train/", form_data([bobs], sessions[2:]))
    assert "Select a valid choice" in response.content.decode()
    assert not TrainingRun.objects.exists()


# ------------------------------------------------------------------ compare


def test_two_models_compare_side_by_side(trained, sessions, alice_client):
    other = make_run(sessions[1:], sessions[:1], status="complete",
                     metrics=trained.metrics, name="other")  # fmt: skip
    response = alice_client.get(f"/models/compare/?a={trained.pk}&b={other.pk}")
    assert response.status_code == 200
    assert response.context["a"] == trained and response.context["b"] == other
    chart = response.context["per_joint"]
    assert [s["label"] for s in chart["series"]] == [f"A: {trained}", "B: other"]
    assert all(len(s["values"]) == 21 for s in chart["series"])
    mpjpe = response.context["metric_rows"][0]
    assert mpjpe["label"] == "MPJPE" and mpjpe["values"][0] == trained.mpjpe_mm


def test_compare_without_two_choices_goes_back_to_the_registry(alice_client):
    response = alice_client.get("/models/compare/?a=1")
    assert response.status_code == 302 and response.url == "/models/"


# ------------------------------------------------------------------ isolation


@pytest.mark.parametrize(
    "method,suffix",
    [
        ("get", ""),
        ("get", "status"),
        ("get", "download"),
        ("get", "download/torchscript"),
        ("post", "cancel"),
        ("post", "resume"),
        ("post", "export/onnx"),
    ],
)
def test_bob_cannot_see_or_touch_alices_run(
    trained, alice_client, bob_client, method, suffix
):
    (trained.folder / "model.torchscript.pt").write_bytes(b"an export")
    trained.exports = {"torchscript": {"max_abs_diff_mm": 0.0}}
    trained.save()
    response = getattr(bob_client, method)(f"/models/{trained.pk}/{suffix}")
    assert response.status_code == 404
    trained.refresh_from_db()
    assert trained.status == "complete" and not trained.cancel_requested
    assert "onnx" not in trained.exports
    if method == "get":  # what bob cannot see, alice can
        assert alice_client.get(f"/models/{trained.pk}/{suffix}").status_code == 200


def test_bob_cannot_compare_alices_models(
    trained, bob, make_labeled_session, bob_client
):
    bobs_session = make_labeled_session(recording(0), owner=bob)
    bobs = make_run([bobs_session], [bobs_session], status="complete")
    response = bob_client.get(f"/models/compare/?a={bobs.pk}&b={trained.pk}")
    assert response.status_code == 404


def test_bob_cannot_train_on_alices_sessions_nor_see_her_models(
    trained, sessions, bob, make_labeled_session, bob_client
):
    make_labeled_session(recording(0), owner=bob)
    response = bob_client.post("/models/train/", form_data(sessions[:2], sessions[2:]))
    assert "Select a valid choice" in response.content.decode()
    assert TrainingRun.objects.count() == 1
    registry = bob_client.get("/models/")
    assert list(registry.context["runs"]) == []
    assert f"/models/{trained.pk}/" not in registry.content.decode()


# ------------------------------------------------------------------ websocket


async def watch(run_id: int, user) -> WebsocketCommunicator:
    from webapp.asgi import application

    tab = WebsocketCommunicator(application, f"/ws/models/{run_id}/",
                                headers=[(b"origin", b"http://127.0.0.1")])  # fmt: skip
    tab.scope["user"] = user
    return tab


@pytest.fixture
async def channel_cleanup():
    yield
    # the consumers' DB helpers ran on asgiref's thread: close its connection
    await sync_to_async(connections.close_all)()
    await get_channel_layer().flush()


@pytest.mark.django_db(transaction=True)
async def test_the_owner_watches_epochs_live(alice, channel_cleanup):
    run = await sync_to_async(TrainingRun.objects.create)(owner=alice, model_name=MODEL)
    tab = await watch(run.pk, alice)
    connected, _ = await tab.connect()
    assert connected
    await sync_to_async(push_epoch)(run.pk, {"epoch": 1, "val_mpjpe_mm": 21.5})
    message = await tab.receive_json_from(timeout=5)
    assert message == {"type": "training.epoch", "run": run.pk,
                       "metrics": {"epoch": 1, "val_mpjpe_mm": 21.5}}  # fmt: skip
    await tab.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_bob_cannot_watch_alices_run(alice, bob, channel_cleanup):
    run = await sync_to_async(TrainingRun.objects.create)(owner=alice, model_name=MODEL)
    tab = await watch(run.pk, bob)
    connected, code = await tab.connect()
    assert not connected and code == 4003
