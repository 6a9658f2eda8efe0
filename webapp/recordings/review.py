"""The session review page and the JSON ranges it loads.

The page first loads the overview (steps, their statistics, invalid-label spans),
then asks for EMG envelopes and label frames of the ranges it shows, at the
resolution it draws: never the whole file (see recorder/session_review.py).

With `?mesh=1` the hand can be drawn as MANO's mesh: the overview then carries the
mesh's triangles once (`mesh_faces`) and label ranges carry each frame's vertices
(`vertices_mm`), when the server has the user's MANO files (MANO_MODEL_DIR) and the
labels have poses; otherwise both are None and `mesh_note` says why.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render

from recorder import session_review
from recorder.session_file import SessionFormatError
from recorder.session_review import NoLabelsError, ReviewError
from webapp import storage
from webapp.recordings.models import RecordingSession

DEFAULT_BINS = 1000
DEFAULT_LABEL_FRAMES = 600


class BadQuery(ValueError):
    """A query parameter is missing or not a number; the message names it."""


def _own_session(request, session_id: int) -> RecordingSession:
    """The user's own session, or 404: to them, another user's does not exist."""
    return get_object_or_404(
        RecordingSession.objects.select_related("subject"),
        pk=session_id,
        owner=request.user,
    )


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _number(request, name: str, kind=float, default=None):
    text = request.GET.get(name)
    if text is None or text == "":
        if default is None:
            raise BadQuery(f"{name} is required")
        return default
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise BadQuery(f"{name} must be {what}, got {text!r}") from None


def _wants_mesh(request) -> bool:
    return request.GET.get("mesh", "") in ("1", "true")


def _mano_dir() -> str | None:
    """The user's MANO files, if the server has them (they are licensed)."""
    return settings.MANO_MODEL_DIR or None


def _answer(request, session_id: int, reply) -> JsonResponse:
    """Runs `reply(index, path)` for the user's session, turning every way it can
    fail into a JSON error that says why."""
    session = _own_session(request, session_id)
    if not session.file:
        return _error("This session has no file yet.", 404)
    try:
        path = storage.local_copy(session.file.name)
        return JsonResponse(reply(session_review.session_index(path), path))
    except BadQuery as error:
        return _error(str(error), 400)
    except NoLabelsError as error:
        return _error(str(error), 404)
    except ReviewError as error:
        return _error(str(error), 400)
    except SessionFormatError as error:
        return _error(f"The session file cannot be read: {error}", 422)
    except FileNotFoundError:
        return _error("The session file is missing from storage.", 404)


@login_required
def review_page(request, session_id: int):
    session = _own_session(request, session_id)
    return render(request, "recordings/review.html", {"session": session})


@login_required
def review_overview(request, session_id: int):
    """&mesh=1 adds the mesh's triangles (or why there are none)."""

    def reply(index, path):
        overview = session_review.overview(index)
        if _wants_mesh(request):
            overview.update(session_review.mesh_faces(index, _mano_dir()))
        return overview

    return _answer(request, session_id, reply)


@login_required
def review_emg(request, session_id: int):
    """?start=&end= session seconds, &bins= how many min/max pairs per channel."""

    def reply(index, path):
        start_s, end_s = _number(request, "start"), _number(request, "end")
        bins = _number(request, "bins", int, DEFAULT_BINS)
        return session_review.emg_envelope(index, path, start_s, end_s, bins)

    return _answer(request, session_id, reply)


@login_required
def review_labels(request, session_id: int):
    """?start=&end= session seconds, &max_frames= the most frames to return,
    &mesh=1 to add MANO mesh vertices (thinned to fewer frames)."""

    def reply(index, path):
        start_s, end_s = _number(request, "start"), _number(request, "end")
        max_frames = _number(request, "max_frames", int, DEFAULT_LABEL_FRAMES)
        return session_review.label_frames(
            index, path, start_s, end_s, max_frames,
            mesh=_wants_mesh(request), mano_dir=_mano_dir(),
        )  # fmt: skip

    return _answer(request, session_id, reply)
