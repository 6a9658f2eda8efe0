"""Portal pages for subjects and recording sessions.

Every query is scoped to the logged-in user."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from recorder.protocol import make_message
from webapp.accounts.models import AgentToken
from webapp.recordings.forms import SessionForm, StartForm, SubjectForm
from webapp.recordings.models import RecordingSession, SessionVideo, Subject
from webapp.recordings.presence import start_command
from webapp.recordings.runner import runner_context
from webapp.recordings.video import VideoRequestError
from webapp.recordings.video import request_video as record_video_request

Status = RecordingSession.Status


def _get_session(request, session_id: int) -> RecordingSession:
    """The user's own session, or 404: to them, another user's does not exist."""
    return get_object_or_404(
        RecordingSession.objects.select_related("subject", "agent"),
        pk=session_id,
        owner=request.user,
    )


def _send_to_agent(agent: AgentToken, message: str) -> None:
    async_to_sync(get_channel_layer().group_send)(
        agent.group_name, {"type": "agent.command", "message": message}
    )


@login_required
def subjects(request):
    form = SubjectForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        form.instance.owner = request.user
        form.save()
        messages.success(request, f"Subject {form.instance.name} added.")
        return redirect("subjects")
    rows = Subject.objects.filter(owner=request.user)
    return render(request, "recordings/subjects.html", {"form": form, "subjects": rows})


@login_required
def sessions(request):
    form = SessionForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        form.instance.owner = request.user
        session = form.save()
        return redirect(session)
    rows = RecordingSession.objects.filter(owner=request.user).select_related("subject")
    has_subjects = Subject.objects.filter(owner=request.user).exists()
    return render(
        request,
        "recordings/sessions.html",
        {"form": form, "sessions": rows, "has_subjects": has_subjects},
    )


@login_required
def session_detail(request, session_id: int):
    session = _get_session(request, session_id)
    agents = [
        a
        for a in AgentToken.objects.active().filter(owner=request.user)
        if a.is_online()
    ]
    return render(
        request,
        "recordings/session_detail.html",
        {
            "session": session,
            "agents": agents,
            "video": SessionVideo.objects.filter(session=session).first(),
            **runner_context(session),
        },
    )


@login_required
def session_status(request, session_id: int):
    """Polled by the live page: status, totals and the user's online agents."""
    session = _get_session(request, session_id)
    agents = AgentToken.objects.active().filter(owner=request.user)
    return JsonResponse(
        {
            "status": session.status,
            "status_label": session.get_status_display(),
            "sample_count": session.sample_count,
            "duration_s": session.duration_s,
            "dropped_packets": session.dropped_packets,
            "error": session.error,
            "download_url": reverse("download", args=[session.pk])
            if session.file
            else None,
            "agent": session.agent
            and {"name": session.agent.name, "online": session.agent.is_online()},
            "agents_online": [
                {"id": a.pk, "name": a.name} for a in agents if a.is_online()
            ],
        }
    )


@login_required
@require_POST
def start_recording(request, session_id: int):
    session = _get_session(request, session_id)
    form = StartForm(
        request.POST
    )  # a non-numeric agent id must not reach the query (500)
    agent = None
    if form.is_valid():
        agent = (
            AgentToken.objects.active()
            .filter(pk=form.cleaned_data["agent"], owner=request.user)
            .first()
        )
    if session.status != Status.CREATED:
        messages.error(
            request,
            f"This session is {session.get_status_display().lower()}; "
            "create a new session to record again.",
        )
    elif agent is None or not agent.is_online():
        messages.error(request, "Choose one of your agents that is connected.")
    # conditional, so that two clicks at once cannot send the session to two agents
    elif RecordingSession.objects.filter(pk=session.pk, status=Status.CREATED).update(
        status=Status.RECORDING, agent=agent, started_at=timezone.now()
    ):
        session.refresh_from_db()
        _send_to_agent(agent, start_command(session))
    return redirect(session)


@login_required
@require_POST
def stop_recording(request, session_id: int):
    session = _get_session(request, session_id)
    if session.status in (Status.RECORDING, Status.STOPPING):
        # only while still active: the agent's stop report may have moved it on
        RecordingSession.objects.filter(
            pk=session.pk, status__in=[Status.RECORDING, Status.STOPPING]
        ).update(status=Status.STOPPING, stopped_at=timezone.now())
        if session.agent is not None:
            _send_to_agent(
                session.agent, make_message("recording.stop", session=session.pk)
            )
    return redirect(session)


@login_required
def download(request, session_id: int):
    session = _get_session(request, session_id)
    if not session.file:
        raise Http404("This session has no file yet.")
    return FileResponse(
        session.file.open("rb"), as_attachment=True, filename=f"session-{session.pk}.h5"
    )


@login_required
@require_POST
def request_video(request, session_id: int):
    """Ask the recording agent to send the video it saved on the laptop."""
    session = _get_session(request, session_id)
    try:
        command = record_video_request(session)
    except VideoRequestError as exc:
        messages.error(request, str(exc))
        return redirect(session)
    # an offline agent gets the request when it reconnects (commands_after_reconnect)
    _send_to_agent(session.agent, command)
    if session.agent.is_online():
        note = f"Asked {session.agent.name} to send its saved video of this session."
    else:
        note = (
            f"{session.agent.name} is offline; it is asked to send its saved video "
            "when it next connects."
        )
    messages.success(request, note)
    return redirect(session)


@login_required
def download_video(request, session_id: int):
    video = _uploaded_video(request, session_id)
    return FileResponse(
        video.file.open("rb"), as_attachment=True, filename=f"session-{session_id}.mp4"
    )


@login_required
def download_video_frames(request, session_id: int):
    video = _uploaded_video(request, session_id)
    if not video.frames_file:
        raise Http404("The agent sent no frame times with this video.")
    return FileResponse(
        video.frames_file.open("rb"),
        as_attachment=True,
        filename=f"session-{session_id}.frames.csv",
    )


def _uploaded_video(request, session_id: int) -> SessionVideo:
    session = _get_session(request, session_id)  # the owner's only
    video = SessionVideo.objects.filter(session=session).exclude(file="").first()
    if video is None:
        raise Http404("This session has no uploaded video.")
    return video
