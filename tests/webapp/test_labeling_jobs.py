"""Labeling jobs: the task called directly, its failures, and the pages around it."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from labeling.pipeline import label_recording
from recorder.session_file import read_session, write_session
from recorder.simulate_file import simulate_session
from webapp.jobs.models import Job
from webapp.jobs.tasks import label_session
from webapp.recordings.importing import import_session_file

SETTINGS = {"alignment": "umeyama_scale", "optimizer": "adam"}


@pytest.fixture
def recorded(alice, storage):
    """Alice's session: 4 s of a simulated person with webcam landmarks."""

    def record(handedness="right", **changes):
        path = storage / "source.h5"
        source = simulate_session(4.0, seed=5, handedness=handedness)
        write_session(path, dataclasses.replace(source, **changes))
        return import_session_file(alice, path, "Sim")

    return record


def run_job(session, settings=SETTINGS) -> Job:
    job = Job.objects.create(owner=session.owner, session=session,
                             kind=Job.Kind.LABELING, config=settings)  # fmt: skip
    label_session(job.pk)
    job.refresh_from_db()
    return job


def test_labeling_writes_labels_and_keeps_the_landmarks(recorded):
    session = recorded()
    before = read_session(session.file.path)
    job = run_job(session)
    assert job.status == "complete", job.error
    after = read_session(session.file.path)
    frames = len(before.frame_time)
    assert after.pose.shape == (frames, 48) and after.joints.shape == (frames, 21, 3)
    assert after.ik_error.shape == (frames,) and after.label_valid.dtype == bool
    np.testing.assert_array_equal(after.landmarks, before.landmarks)
    np.testing.assert_array_equal(after.emg, before.emg)
    assert job.result["frames"] == frames and 0.5 < job.result["valid_fraction"] <= 1
    assert len(job.result["per_joint_residual_mm"]) == 21
    assert (
        sum(job.result["residual_histogram"]["counts"]) == job.result["detected_frames"]
    )
    assert job.progress_done == job.progress_total == frames


def test_a_left_hand_is_fitted_with_the_mirrored_model(recorded):
    session = recorded(handedness="left")
    landmarks = read_session(session.file.path)
    job = run_job(session)
    assert job.status == "complete", job.error
    _, wrong_hand = label_recording(landmarks.landmarks, landmarks.landmark_score, {})
    assert job.result["mean_residual_mm"] < wrong_hand["mean_residual_mm"]


def test_relabeling_with_other_settings_keeps_the_raw_landmarks(recorded):
    session = recorded()
    landmarks = read_session(session.file.path).landmarks
    run_job(session)
    job = run_job(session, {"alignment": "kabsch", "optimizer": "adam"})
    assert job.status == "complete", job.error
    np.testing.assert_array_equal(read_session(session.file.path).landmarks, landmarks)


def test_a_session_without_landmarks_fails_with_a_clear_message(recorded):
    session = recorded(frame_time=None, landmarks=None, landmark_score=None)
    job = run_job(session)
    assert job.status == "failed" and "no webcam landmarks" in job.error


def test_all_missing_landmarks_fail_with_a_clear_message(recorded):
    source = simulate_session(4.0, seed=5)
    session = recorded(landmarks=np.full_like(source.landmarks, np.nan))
    job = run_job(session)
    assert job.status == "failed" and "no hand was detected" in job.error


def test_a_corrupt_file_fails_with_a_clear_message(recorded):
    session = recorded()
    with open(session.file.path, "r+b") as handle:
        handle.write(b"this is not HDF5 any more")
    job = run_job(session)
    assert job.status == "failed" and "session file" in job.error


def test_unknown_settings_fail_with_a_clear_message(recorded):
    job = run_job(recorded(), {"alignment": "guesswork", "optimizer": "adam"})
    assert job.status == "failed" and "alignment" in job.error


def test_the_label_button_queues_a_job_and_shows_its_page(recorded, alice_client):
    session = recorded()
    response = alice_client.post(f"/sessions/{session.pk}/label", SETTINGS)
    job = Job.objects.get()
    assert response.status_code == 302 and response.url == f"/jobs/{job.pk}/"
    assert alice_client.get(f"/jobs/{job.pk}/").status_code == 200
    status = alice_client.get(f"/jobs/{job.pk}/status").json()
    assert status["status"] in ("queued", "running", "complete")


def test_bob_cannot_label_or_watch_alices_session(recorded, bob_client):
    session = recorded()
    assert bob_client.post(f"/sessions/{session.pk}/label", SETTINGS).status_code == 404
    job = Job.objects.create(owner=session.owner, session=session, kind="labeling")
    assert bob_client.get(f"/jobs/{job.pk}/").status_code == 404
    assert bob_client.get(f"/jobs/{job.pk}/status").status_code == 404
    assert not Job.objects.exclude(pk=job.pk).exists()


def test_a_job_whose_worker_went_silent_is_failed(recorded, alice_client):
    session = recorded()
    quiet_since = timezone.now() - timedelta(hours=1)
    job = Job.objects.create(owner=session.owner, session=session, kind="labeling",
                             status="running", heartbeat_at=quiet_since)  # fmt: skip
    status = alice_client.get(f"/jobs/{job.pk}/status").json()
    assert status["status"] == "failed" and "stopped reporting" in status["error"]
