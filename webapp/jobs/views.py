"""Job pages: start a labeling job on a session, watch it, read its result."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from webapp.jobs.models import Job
from webapp.recordings.models import RecordingSession


class LabelingForm(forms.Form):
    alignment = forms.ChoiceField(
        choices=[("umeyama_scale", "Umeyama with scale"),
                 ("umeyama_rigid", "Umeyama rigid"), ("kabsch", "Kabsch")],
    )  # fmt: skip
    optimizer = forms.ChoiceField(
        choices=[("adam", "Adam"), ("sgd", "SGD"), ("lbfgs", "L-BFGS")]
    )


def _get_job(request, job_id: int) -> Job:
    """The user's own job, or 404."""
    job = get_object_or_404(Job.objects.select_related("session"), pk=job_id,
                            owner=request.user)  # fmt: skip
    if job.is_stale():
        Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
            status=Job.Status.FAILED, finished_at=timezone.now(),
            error="the worker stopped reporting progress (it may have been killed)",
        )  # fmt: skip
        job.refresh_from_db()
    return job


@login_required
@require_POST
def start_labeling(request, session_id: int):
    from webapp.jobs.tasks import label_session

    session = get_object_or_404(RecordingSession, pk=session_id, owner=request.user)
    form = LabelingForm(request.POST)
    if not session.file:
        messages.error(request, "This session has no file to label yet.")
        return redirect(session)
    if not form.is_valid():
        messages.error(request, "Choose an alignment and an optimizer.")
        return redirect(session)
    with transaction.atomic():
        job = Job.objects.create(
            owner=request.user, session=session, kind=Job.Kind.LABELING,
            config=form.cleaned_data,
        )  # fmt: skip
        transaction.on_commit(lambda: label_session.delay(job.pk))
    return redirect(job)


@login_required
def job_detail(request, job_id: int):
    return render(request, "jobs/job_detail.html", {"job": _get_job(request, job_id)})


@login_required
def job_status(request, job_id: int):
    job = _get_job(request, job_id)
    return JsonResponse({
        "status": job.status,
        "status_label": job.get_status_display(),
        "done": job.progress_done,
        "total": job.progress_total,
        "message": job.progress_message,
        "seconds_left": job.seconds_left(),
        "result": job.result,
        "error": job.error,
    })  # fmt: skip
