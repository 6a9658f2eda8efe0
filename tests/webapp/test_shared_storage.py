"""Session files, labels and checkpoints in S3-compatible object storage (STORAGE=s3,
django-storages), against moto's S3 server on a free port: every file lands in the
bucket and is read back from it; nothing stays only on the local disk."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import boto3
import pytest
from django.test import Client
from django.urls import reverse
from moto.server import ThreadedMotoServer

from recorder.session_file import read_session, write_session
from recorder.simulate_file import simulate_session
from tests.training.sessions import labeled_recording
from webapp import storage
from webapp.accounts.models import AgentToken
from webapp.jobs.models import Job
from webapp.jobs.tasks import label_session
from webapp.live.db import usable_run
from webapp.live.predictors import checkpoint_file
from webapp.processes import free_port
from webapp.recordings.importing import import_session_file
from webapp.registry.models import TrainingRun
from webapp.registry.tasks import train_model

BUCKET = "emg-test"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
               "region_name": "us-east-1"}  # fmt: skip
SMALL_V5 = {"conv_channels": [8, 16], "lstm_hidden": 16, "lstm_layers": 1}


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server, in this process, with an empty bucket."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS).create_bucket(
        Bucket=BUCKET
    )
    yield endpoint
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, settings, tmp_path):
    """STORAGE=s3 for this test; returns the bucket, emptied afterwards."""
    settings.STORAGES = settings.STORAGES | {"default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": BUCKET, "endpoint_url": s3_endpoint,
                    "access_key": "testing", "secret_key": "testing",
                    "region_name": "us-east-1", "addressing_style": "path",
                    "file_overwrite": True, "default_acl": None},
    }}  # fmt: skip
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGE_CACHE_DIR = tmp_path / "cache"
    s3 = boto3.resource("s3", endpoint_url=s3_endpoint, **CREDENTIALS).Bucket(BUCKET)
    assert not storage.is_local()
    yield s3
    s3.objects.all().delete()


def stored_bytes(bucket, key: str) -> bytes:
    return bucket.Object(key).get()["Body"].read()


def stored_keys(bucket) -> set[str]:
    return {item.key for item in bucket.objects.all()}


def local_files(root) -> list:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def import_file(owner, recording, folder, name: str):
    path = folder / f"{name}.h5"
    write_session(path, recording)
    return import_session_file(owner, path, "Sim")


def test_a_session_is_imported_labeled_reviewed_and_downloaded_in_the_bucket(
    bucket, alice, alice_client, settings, tmp_path
):
    session = import_file(alice, simulate_session(4.0, seed=5), tmp_path, "sim")
    key = f"sessions/user-{alice.pk}/session-{session.pk}.h5"
    assert session.file.name == key and stored_keys(bucket) == {key}

    overview = alice_client.get(reverse("review_overview", args=[session.pk]))
    assert overview.status_code == 200, overview.content
    assert overview.json()["duration_s"] == pytest.approx(4.0, abs=0.01)

    job = Job.objects.create(owner=alice, session=session, kind=Job.Kind.LABELING,
                             config={"alignment": "umeyama_scale"})  # fmt: skip
    label_session(job.pk)
    job.refresh_from_db()
    assert job.status == "complete", job.error
    labeled = stored_bytes(bucket, key)
    session.refresh_from_db()
    assert session.file_sha256 == hashlib.sha256(labeled).hexdigest()

    download = alice_client.get(reverse("download", args=[session.pk]))
    assert b"".join(download.streaming_content) == labeled
    # a fresh machine: its cache is empty, so the labels come from the bucket
    shutil.rmtree(settings.STORAGE_CACHE_DIR)
    copy = storage.local_copy(key)
    assert read_session(copy).label_valid is not None
    assert copy.stat().st_mode & 0o222 == 0  # read-only: writing changes nothing
    assert local_files(settings.MEDIA_ROOT) == []


def test_a_stale_cached_copy_is_fetched_again(bucket, alice, tmp_path):
    session = import_file(alice, simulate_session(2.0, seed=1), tmp_path, "one")
    first = storage.local_copy(session.file.name).read_bytes()
    other = tmp_path / "other.h5"
    write_session(other, simulate_session(3.0, seed=2))
    bucket.upload_file(str(other), session.file.name)  # another worker rewrote it
    assert storage.local_copy(session.file.name).read_bytes() == other.read_bytes()
    assert first != other.read_bytes()


def test_a_missing_object_is_a_clear_404(bucket, alice, alice_client, tmp_path):
    session = import_file(alice, simulate_session(2.0, seed=1), tmp_path, "gone")
    bucket.Object(session.file.name).delete()
    response = alice_client.get(reverse("review_overview", args=[session.pk]))
    assert response.status_code == 404
    assert response.json()["error"] == "The session file is missing from storage."


def test_training_checkpoints_are_stored_in_the_bucket_and_loaded_from_it(
    bucket, alice, alice_client, settings, tmp_path
):
    train, held_out = (
        import_file(alice, labeled_recording(4.0, session=k), tmp_path, f"s{k}")
        for k in range(2)
    )
    run = TrainingRun.objects.create(
        owner=alice, model_name="v5", epochs=2,
        config={"batch_size": 64, "stride_samples": 25, "model_config": SMALL_V5},
    )  # fmt: skip
    run.train_sessions.set([train])
    run.validation_sessions.set([held_out])
    train_model(run.pk)
    run.refresh_from_db()
    assert run.status == "complete", run.error

    prefix = f"models/{run.pk}"
    assert {f"{prefix}/{name}" for name in ("last.pt", "best.pt", "final.pt")} <= (
        stored_keys(bucket)
    )
    download = alice_client.get(reverse("download_checkpoint", args=[run.pk]))
    final = stored_bytes(bucket, f"{prefix}/final.pt")
    assert b"".join(download.streaming_content) == final
    # another machine: no local working folder, no cache; the model loads from S3
    shutil.rmtree(settings.STORAGE_CACHE_DIR)
    described = usable_run.func(alice.pk, run.pk)  # the sync body of the helper
    assert described["checkpoint"] == f"{prefix}/final.pt"
    from inference import LivePredictor

    predictor = LivePredictor.from_checkpoint(checkpoint_file(described["checkpoint"]))
    assert predictor is not None
    assert local_files(settings.MEDIA_ROOT) == []


def test_an_interrupted_run_resumes_from_the_stored_last_checkpoint(
    bucket, alice, tmp_path
):
    sessions = [
        import_file(alice, labeled_recording(4.0, session=k), tmp_path, f"r{k}")
        for k in range(2)
    ]
    run = TrainingRun.objects.create(
        owner=alice, model_name="v5", epochs=1, status="interrupted",
        config={"batch_size": 64, "stride_samples": 25, "model_config": SMALL_V5},
    )  # fmt: skip
    run.train_sessions.set(sessions[:1])
    run.validation_sessions.set(sessions[1:])
    assert not run.can_resume
    train_model(run.pk)  # one epoch, stored
    run.refresh_from_db()
    shutil.rmtree(run.folder)  # the first worker's machine is gone
    TrainingRun.objects.filter(pk=run.pk).update(status="interrupted", epochs=2)
    run.refresh_from_db()
    assert run.can_resume
    train_model(run.pk)
    run.refresh_from_db()
    assert run.status == "complete", run.error
    assert "resuming v5" in run.log_tail
    assert [h["epoch"] for h in run.history] == [1, 2]


def test_an_uploaded_video_goes_to_the_bucket_and_back_to_its_owner(
    bucket, alice, alice_client, make_session, settings
):
    token, secret = AgentToken.issue(alice, "laptop")
    session = make_session(alice, status="complete", agent=token)
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64
    response = Client().post(
        f"/agent/sessions/{session.pk}/video", data=video, content_type="video/mp4",
        HTTP_AUTHORIZATION=f"Token {secret}",
        HTTP_X_CONTENT_SHA256=hashlib.sha256(video).hexdigest(),
    )  # fmt: skip
    assert response.status_code == 200, response.content
    key = f"videos/user-{alice.pk}/session-{session.pk}.mp4"
    assert stored_bytes(bucket, key) == video
    download = alice_client.get(reverse("video", args=[session.pk]))
    assert b"".join(download.streaming_content) == video
    assert local_files(settings.MEDIA_ROOT) == []


def test_a_file_not_stored_anywhere_is_named(bucket):
    with pytest.raises(FileNotFoundError, match="sessions/none.h5 is not in storage"):
        storage.local_copy("sessions/none.h5")


def test_local_storage_uses_the_stored_file_itself(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    assert storage.is_local()
    with storage.writing("sessions/a.h5") as path:
        path.write_bytes(b"session")
    assert path == tmp_path / "media" / "sessions" / "a.h5"
    assert storage.local_copy("sessions/a.h5") == path


def test_s3_storage_needs_a_bucket():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings", "STORAGE": "s3"}
    env.pop("AWS_STORAGE_BUCKET_NAME", None)
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"],
                            env=env, capture_output=True, text=True)  # fmt: skip
    assert "STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME" in result.stderr
