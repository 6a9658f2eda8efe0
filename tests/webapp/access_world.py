"""One owner's complete world for the access matrix (test_access_matrix.py).

Alice owns one of everything the portal has: a subject, a finished session with its
file and uploaded video, a session being recorded, an agent token, a protocol, a
labeling job and two finished training runs with their checkpoint and an export.
Every name and file she has carries MARK, so a response that leaks any of it to
someone else shows it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.utils import timezone

from recorder.guided.protocols import parse_protocol
from recorder.session_file import write_session
from tests.webapp.test_review import fabricated_recording
from webapp.accounts.models import AgentToken
from webapp.jobs.models import Job, WorkerStatus
from webapp.protocols.models import ProtocolEvent, UserProtocol
from webapp.recordings.models import RecordingSession, SessionVideo, Subject
from webapp.registry.models import TrainingRun

MARK = "alicesecret"
PASSWORD = "correct-horse-battery"
BUILTIN_PROTOCOL = (
    Path(__file__).resolve().parents[2] / "recorder/guided/files/calibration.json"
)


@dataclass
class World:
    alice: User
    bob: User
    carol: User  # staff
    token: AgentToken
    secret: str
    bob_secret: str
    subject: Subject
    session: RecordingSession  # complete: file, video, job, protocol event
    recording: RecordingSession  # being recorded by alice's agent now
    run: TrainingRun
    other_run: TrainingRun
    job: Job
    protocol: UserProtocol
    group: Group


def build_world() -> World:
    alice = User.objects.create_user("alice", password=PASSWORD)
    bob = User.objects.create_user("bob", password=PASSWORD)
    carol = User.objects.create_user(
        "carol", password=PASSWORD, is_staff=True, is_superuser=True
    )
    token, secret = AgentToken.issue(alice, f"{MARK}-laptop")
    AgentToken.objects.filter(pk=token.pk).update(
        connected=True, last_seen_at=timezone.now()
    )
    _, bob_secret = AgentToken.issue(bob, "bobs-laptop")
    subject = Subject.objects.create(owner=alice, name=f"{MARK}-subject")
    session = _finished_session(alice, subject, token)
    recording = RecordingSession.objects.create(
        owner=alice, subject=subject, agent=token, status="recording",
        protocol_name=f"{MARK}-free", started_at=timezone.now(),
        device_info={"kind": "simulated", "sampling_rate_hz": 500.0,
                     "channel_names": [f"ch{i + 1}" for i in range(8)]},
    )  # fmt: skip
    run, other_run = (_finished_run(alice, session, k) for k in (1, 2))
    job = Job.objects.create(owner=alice, session=session, kind=Job.Kind.LABELING)
    WorkerStatus.objects.create(
        name="celery@gpu-1", queues=["training"], task_started_at=timezone.now(),
        task_name="webapp.registry.tasks.train_model", task_object_id=run.pk,
    )  # fmt: skip
    return World(
        alice=alice, bob=bob, carol=carol, token=token, secret=secret,
        bob_secret=bob_secret, subject=subject, session=session,
        recording=recording, run=run, other_run=other_run, job=job,
        protocol=_protocol(alice), group=Group.objects.create(name=f"{MARK}-group"),
    )  # fmt: skip


def _finished_session(alice, subject, token) -> RecordingSession:
    session = RecordingSession.objects.create(
        owner=alice, subject=subject, agent=token, status="complete",
        protocol_name=f"{MARK}-protocol-name", notes=f"{MARK} notes",
    )  # fmt: skip
    media = Path(settings.MEDIA_ROOT)
    relative = f"sessions/{MARK}-{session.pk}.h5"
    (media / "sessions").mkdir(parents=True, exist_ok=True)
    write_session(media / relative, fabricated_recording())
    session.file.name = relative
    session.save(update_fields=["file"])
    _write(media / f"videos/{MARK}.mp4", f"{MARK} video bytes".encode())
    _write(media / f"videos/{MARK}.frames.csv", f"{MARK},frame,times\n".encode())
    SessionVideo.objects.create(
        session=session, state="complete", file=f"videos/{MARK}.mp4",
        frames_file=f"videos/{MARK}.frames.csv", size_bytes=17,
    )  # fmt: skip
    ProtocolEvent.objects.create(
        session=session, event_id=f"{MARK}-1", time_s=0.0, kind="step_start"
    )
    return session


def _finished_run(alice, session, k: int) -> TrainingRun:
    run = TrainingRun.objects.create(
        owner=alice, name=f"{MARK}-run-{k}", model_name="tcn", status="complete",
        exports={"onnx": {"max_abs_diff_mm": 0.0}},
        metrics={"model": {"mpjpe_mm": 12.5}, "baseline": {"mpjpe_mm": 30.0}},
    )  # fmt: skip
    run.train_sessions.set([session])
    run.validation_sessions.set([session])
    # a checkpoint is a zip archive (torch.save); its contents don't matter here
    import zipfile

    run.folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(run.checkpoint_path, "w") as archive:
        archive.writestr("data.pkl", f"{MARK} weights")
    _write(run.folder / "model.onnx", f"{MARK} onnx".encode())
    return run


def _protocol(alice) -> UserProtocol:
    definition = json.loads(BUILTIN_PROTOCOL.read_text())
    definition["name"] = f"{MARK}-protocol"
    return UserProtocol.objects.create(
        owner=alice,
        name=definition["name"],
        definition=parse_protocol(definition).as_dict(),
    )


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def alices_rows(world: World) -> dict:
    """Everything of alice's in the database, to prove a request changed nothing."""
    owner = {"owner": world.alice}
    by_session = {"session__owner": world.alice}
    tables = {
        "subjects": Subject.objects.filter(**owner),
        "sessions": RecordingSession.objects.filter(**owner),
        "tokens": AgentToken.objects.filter(**owner),
        "runs": TrainingRun.objects.filter(**owner),
        "jobs": Job.objects.filter(**owner),
        "protocols": UserProtocol.objects.filter(**owner),
        "videos": SessionVideo.objects.filter(**by_session),
        "events": ProtocolEvent.objects.filter(**by_session),
    }
    rows = {name: list(query.order_by("pk").values()) for name, query in tables.items()}
    for token in rows["tokens"]:  # presence, which any connection refreshes
        for field in ("connected", "last_seen_at", "device_info"):
            token.pop(field)
    # logging in (last_login) is not a change to her data
    rows["user"] = list(
        User.objects.filter(pk=world.alice.pk).values("username", "password")
    )
    media = Path(settings.MEDIA_ROOT)
    rows["files"] = sorted(
        (str(path.relative_to(media)), hashlib.sha256(path.read_bytes()).hexdigest())
        for path in media.rglob("*")
        if path.is_file()
    )
    return rows
