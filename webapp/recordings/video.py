"""Saved videos, uploaded on request (issue #5).

An agent started with --save-video keeps each recording's webcam video on the laptop.
When the session's owner presses "Request the video", the server records the request
(`SessionVideo`) and sends the agent `video.request` (again after every reconnect
while it is pending). The agent then posts two files with its token:

    POST /agent/sessions/<id>/video/frames   the frame-times CSV (first)
    POST /agent/sessions/<id>/video          the mp4

each with Content-Length and X-Content-SHA256. A file is written to a temporary
name, checked against both, and only then renamed over any earlier copy: a repeated
upload replaces the file atomically, and a partial one is never shown. An agent that
cannot send the video answers `video.unavailable`, whose reason the page shows.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from channels.db import database_sync_to_async
from django.conf import settings
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from recorder.protocol import ProtocolError, make_message
from webapp import storage
from webapp.accounts.models import AgentToken
from webapp.recordings.models import RecordingSession, SessionVideo

log = logging.getLogger(__name__)

State = SessionVideo.State
BLOCK_BYTES = 1 << 20
FRAME_TIMES_MAX_MB = 256  # ~20 bytes a frame: days of video at 30 fps
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class VideoRequestError(Exception):
    """The owner's request cannot be passed on; str() says why, for the page."""


class UploadRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------- the request


def request_video(session: RecordingSession) -> str:
    """Record the owner's request; returns the video.request for the agent."""
    agent = session.agent
    if agent is None:
        raise VideoRequestError(
            "No agent recorded this session, so no laptop holds a video of it."
        )
    if session.is_active or session.status == RecordingSession.Status.CREATED:
        raise VideoRequestError(
            "The session has not finished recording; request the video once it stops."
        )
    if agent.revoked:
        raise VideoRequestError(
            f"The token of agent {agent.name} was revoked, so it can no longer "
            "connect to send the video."
        )
    SessionVideo.objects.update_or_create(
        session=session,
        defaults={
            "state": State.REQUESTED,
            "message": "",
            "requested_at": timezone.now(),
        },
    )
    return video_request_command(session.pk)


def video_request_command(session_id: int) -> str:
    return make_message("video.request", session=session_id)


def pending_video_requests(token_id: int) -> list[str]:
    """video.request for each of this agent's sessions still waiting for a video:
    sent when it (re)connects, so a request made while it was offline arrives."""
    waiting = SessionVideo.objects.filter(
        session__agent_id=token_id, state=State.REQUESTED
    ).values_list("session_id", flat=True)
    return [video_request_command(session_id) for session_id in waiting]


@database_sync_to_async
def record_unavailable(token_id: int, session_id: int, reason: str) -> None:
    """The agent's video.unavailable: the page shows the reason."""
    if not RecordingSession.objects.filter(pk=session_id, agent_id=token_id).exists():
        raise ProtocolError(
            "unknown_session",
            f"video.unavailable: session {session_id} does not exist or was not "
            "recorded by this agent",
        )
    # only a pending request: a late answer must not hide a video that arrived
    SessionVideo.objects.filter(session_id=session_id, state=State.REQUESTED).update(
        state=State.FAILED, message=reason[:2000]
    )


# ---------------------------------------------------------------- the upload


@dataclass(frozen=True)
class Part:
    """One of the two files of a saved video."""

    what: str  # for messages
    suffix: str  # of the stored file's name
    field: str  # SessionVideo's field for it

    @property
    def max_mb(self) -> int:
        if self.field == "file":
            return settings.VIDEO_UPLOAD_MAX_MB  # read per request: tests change it
        return FRAME_TIMES_MAX_MB

    @property
    def setting(self) -> str:
        return "VIDEO_UPLOAD_MAX_MB" if self.field == "file" else "a fixed limit"


VIDEO = Part("video", ".mp4", "file")
FRAME_TIMES = Part("frame-times CSV", ".frames.csv", "frames_file")


@csrf_exempt  # an agent authenticates with its token, not with a browser cookie
@require_POST
def receive_video(request, session_id: int):
    return _receive(request, session_id, VIDEO)


@csrf_exempt
@require_POST
def receive_frame_times(request, session_id: int):
    return _receive(request, session_id, FRAME_TIMES)


def _receive(request, session_id: int, part: Part) -> JsonResponse:
    token = AgentToken.find_active(_token_of(request))
    if token is None:
        response = _error(
            401,
            "agent token is missing, unknown or revoked; send 'Authorization: Token "
            "<secret>' with a token from the Agent tokens page",
        )
        response["WWW-Authenticate"] = "Token"
        return response
    # another user's session does not exist, to this token
    session = RecordingSession.objects.filter(pk=session_id, owner=token.owner).first()
    if session is None:
        return _error(404, f"session {session_id} does not exist")
    if session.agent_id != token.pk:
        return _error(
            403, f"session {session_id} was not recorded by this agent ({token.name})"
        )
    try:
        size_bytes = _declared_size(request, part)
        sha256 = _declared_sha256(request)
        relative = f"videos/user-{session.owner_id}/session-{session.pk}{part.suffix}"
        with storage.writing(relative) as path:
            _store(request, size_bytes, sha256, path)
    except UploadRefused as exc:
        if part is VIDEO:  # the owner sees why the video did not arrive
            SessionVideo.objects.filter(session=session).update(
                state=State.FAILED, message=f"the upload was refused: {exc}"
            )
        return _error(exc.status, str(exc))
    except OSError as exc:  # the object storage refused or could not be reached
        log.error("session %s: cannot store the %s: %s", session.pk, part.what, exc)
        return _error(507, f"the server could not store the {part.what}; try later")
    _record_stored(session, part, relative, size_bytes, sha256)
    log.info("session %s: %s stored (%d bytes)", session.pk, part.what, size_bytes)
    return JsonResponse(
        {"session": session.pk, "file": relative, "bytes": size_bytes, "sha256": sha256}
    )


def _record_stored(session, part: Part, relative: str, size_bytes: int, sha256: str):
    if part is FRAME_TIMES:
        SessionVideo.objects.update_or_create(
            session=session, defaults={"frames_file": relative}
        )
        return
    SessionVideo.objects.update_or_create(
        session=session,
        defaults={
            "state": State.COMPLETE,
            "message": "",
            "file": relative,
            "size_bytes": size_bytes,
            "sha256": sha256,
            "uploaded_at": timezone.now(),
        },
    )


def _token_of(request) -> str:
    """The secret from an "Authorization: Token <secret>" header ("" if none)."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() in ("token", "bearer") else ""


def _declared_size(request, part: Part) -> int:
    text = request.META.get("CONTENT_LENGTH") or ""
    if not text:
        raise UploadRefused(
            411, f"Content-Length is required: the {part.what}'s size in bytes"
        )
    try:
        size_bytes = int(text)
    except ValueError:
        raise UploadRefused(
            400, f"Content-Length {text!r} is not a number of bytes"
        ) from None
    if size_bytes <= 0:
        raise UploadRefused(400, f"the {part.what} is empty (Content-Length {text})")
    if size_bytes > part.max_mb * 2**20:
        raise UploadRefused(
            413,
            f"the {part.what} is {size_bytes} bytes ({size_bytes / 2**20:.1f} MB); "
            f"this server accepts at most {part.max_mb} MB ({part.setting})",
        )
    return size_bytes


def _declared_sha256(request) -> str:
    sha256 = request.headers.get("X-Content-SHA256", "").strip().lower()
    if not SHA256_HEX.fullmatch(sha256):
        raise UploadRefused(
            400, "X-Content-SHA256 must be the file's SHA-256, as 64 hex digits"
        )
    return sha256


def _store(request, size_bytes: int, sha256: str, path: Path) -> None:
    """Write the body next to `path`, check it, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # same folder, so the rename is atomic; unique, so two uploads never share it
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        digest, received = hashlib.sha256(), 0
        with open(partial, "wb") as out:
            while received < size_bytes:
                block = request.read(min(BLOCK_BYTES, size_bytes - received))
                if not block:
                    break
                digest.update(block)
                out.write(block)
                received += len(block)
            out.flush()
            os.fsync(out.fileno())
        if received != size_bytes:
            raise UploadRefused(
                400,
                f"the upload ended after {received} of {size_bytes} bytes; "
                "send it again",
            )
        if digest.hexdigest() != sha256:
            raise UploadRefused(
                400,
                f"SHA-256 mismatch: X-Content-SHA256 is {sha256} but the "
                f"{received} bytes received hash to {digest.hexdigest()}; the file "
                "changed or was corrupted in transit, send it again",
            )
        os.replace(partial, path)
    except OSError as exc:  # e.g. disk full: the agent may try again later
        log.error("cannot store %s: %s", path, exc)
        raise UploadRefused(
            507, f"the server could not store the file ({exc.strerror})"
        ) from None
    finally:
        partial.unlink(missing_ok=True)


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)
