"""The live 3D hand page of a session."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from webapp.live.db import usable_runs
from webapp.recordings.models import RecordingSession


@login_required
def hand_page(request, session_id: int):
    session = get_object_or_404(
        RecordingSession.objects.select_related("subject"),
        pk=session_id,
        owner=request.user,
    )
    models = [
        {"id": run.pk, "name": str(run), "model_name": run.model_name,
         "mpjpe_mm": run.mpjpe_mm}
        for run in usable_runs(request.user)
    ]  # fmt: skip
    return render(request, "live/hand.html", {"session": session, "models": models})
