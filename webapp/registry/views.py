"""Model registry pages: start a training run, watch it, compare and download models.

Every query is scoped to the logged-in user; another user's run does not exist."""

from __future__ import annotations

import zipfile
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from labeling.kinematics import MEDIAPIPE_JOINT_NAMES
from webapp import storage
from webapp.registry.forms import FineTuneForm, TrainingForm
from webapp.registry.models import TrainingRun, hide_storage_paths
from webapp.registry.tasks import train_model

Status = TrainingRun.Status
# format -> (name for people, file in the run folder, suffix of the download)
EXPORTS = {
    "torchscript": ("TorchScript", "model.torchscript.pt", "torchscript.pt"),
    "onnx": ("ONNX", "model.onnx", "onnx"),
}
METRICS = [  # (label, key in the metrics of a model or the baseline, unit)
    ("MPJPE", "mpjpe_mm", "mm"),
    ("Fingertip error", "fingertip_error_mm", "mm"),
    ("Joint-angle MAE", "angle_mae_deg", "°"),
    ("Jitter", "jitter_mm", "mm"),
]


def _get_run(request, run_id: int) -> TrainingRun:
    """The user's own run, or 404; a run whose worker went quiet is interrupted."""
    runs = TrainingRun.objects.filter(owner=request.user)
    runs.filter(pk=run_id).interrupt_stale()
    return get_object_or_404(runs, pk=run_id)


@login_required
def registry(request):
    runs = TrainingRun.objects.filter(owner=request.user)
    runs.interrupt_stale()
    runs = runs.prefetch_related("train_sessions", "validation_sessions")
    return render(request, "registry/runs.html", {"runs": runs})


@login_required
def train(request):
    initial = {"train_sessions": request.GET.getlist("session")}
    form = TrainingForm(request.POST or None, owner=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        return redirect(_start_run(request.user, form))
    return render(request, "registry/train.html", {"form": form})


def _start_run(owner, form: TrainingForm) -> TrainingRun:
    data = form.cleaned_data
    with transaction.atomic():
        run = TrainingRun.objects.create(
            owner=owner, name=data["name"], model_name=data["model_name"],
            epochs=data["epochs"], config=form.training_config(),
        )  # fmt: skip
        run.train_sessions.set(data["train_sessions"])
        run.validation_sessions.set(data["validation_sessions"])
        transaction.on_commit(lambda: train_model.delay(run.pk))
    return run


@login_required
def run_detail(request, run_id: int):
    run = _get_run(request, run_id)
    model, baseline = run.metrics.get("model"), run.metrics.get("baseline")
    context = {
        "run": run,
        "metric_rows": metric_rows(model, baseline),
        "per_joint": per_joint_chart(
            [("model", model), ("mean-pose baseline", baseline)]
        ),
        "exports": _exports(run),
        "finetune_form": FineTuneForm(owner=request.user),
        "status_poll_ms": status_poll_ms(),
    }
    return render(request, "registry/run_detail.html", context)


def status_poll_ms() -> int:
    """How often the run page polls its status. Where the channel layer is in one
    process (the embedded mode) the worker cannot push epochs to the page, so the
    poll is the live view: once a second. Elsewhere it is only the fallback."""
    in_one_process = settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith(
        "InMemoryChannelLayer"
    )
    return 1000 if in_one_process else 3000


@login_required
@require_POST
def finetune(request, run_id: int):
    """Start a fine-tune job: the user's complete model, adapted to the person in
    one of the user's labeled sessions; a new run in the registry."""
    base = _get_run(request, run_id)
    if base.status != Status.COMPLETE:
        messages.error(request, "Only a complete model can be fine-tuned.")
        return redirect(base)
    problem = checkpoint_problem(stored_checkpoint(base))
    if problem:
        messages.error(request, f"This model cannot be fine-tuned: {problem}.")
        return redirect(base)
    form = FineTuneForm(request.POST, owner=request.user)
    if not form.is_valid():
        errors = [e for field_errors in form.errors.values() for e in field_errors]
        messages.error(request, "Fine-tuning not started: " + " ".join(errors))
        return redirect(base)
    return redirect(_start_finetune(request.user, base, form))


def _start_finetune(owner, base: TrainingRun, form: FineTuneForm) -> TrainingRun:
    data = form.cleaned_data
    calibration, held_out = data["calibration_session"], data["held_out_session"]
    name = data["name"] or f"{base} for {calibration.subject}"
    with transaction.atomic():
        run = TrainingRun.objects.create(
            owner=owner, name=name[:100], model_name=base.model_name, base=base,
            epochs=data["epochs"], config=form.finetune_config(),
        )  # fmt: skip
        run.train_sessions.set([calibration])
        run.validation_sessions.set([held_out] if held_out else [])
        transaction.on_commit(lambda: train_model.delay(run.pk))
    return run


@login_required
def run_status(request, run_id: int):
    run = _get_run(request, run_id)
    return JsonResponse({
        "status": run.status,
        "status_label": run.get_status_display(),
        "epoch": run.epoch,
        "epochs": run.epochs,
        "history": run.history,
        "log_tail": run.log_tail,
        "seconds_left": run.seconds_left(),
        "metrics": run.metrics,
        "error": run.error,
    })  # fmt: skip


@login_required
@require_POST
def cancel(request, run_id: int):
    run = _get_run(request, run_id)
    if run.finished:
        return redirect(run)
    runs = TrainingRun.objects.filter(pk=run.pk)
    runs.update(cancel_requested=True)  # the worker stops at its next batch
    # nobody trains a queued or interrupted run: it ends now (the worker skips it)
    runs.filter(status__in=[Status.QUEUED, Status.INTERRUPTED]).update(
        status=Status.CANCELLED, finished_at=timezone.now()
    )
    return redirect(run)


@login_required
@require_POST
def resume(request, run_id: int):
    run = _get_run(request, run_id)
    if not run.can_resume:
        messages.error(request, "Only an interrupted or failed run with a saved "
                                "epoch can resume.")  # fmt: skip
        return redirect(run)
    # conditional: two clicks at once queue the run once
    if TrainingRun.objects.filter(pk=run.pk, status=run.status).update(
        status=Status.QUEUED, cancel_requested=False, finished_at=None, error=""
    ):
        transaction.on_commit(lambda: train_model.delay(run.pk))
    messages.success(request, f"Resuming after epoch {run.epoch}.")
    return redirect(run)


@login_required
def download_checkpoint(request, run_id: int):
    run = _get_run(request, run_id)
    if run.status != Status.COMPLETE:
        raise Http404("This run has no final checkpoint yet.")
    checkpoint = stored_checkpoint(run)
    problem = checkpoint_problem(checkpoint)
    if problem:
        messages.error(request, f"The checkpoint cannot be downloaded: {problem}.")
        return redirect(run)
    return _attachment(checkpoint, f"model-{run.pk}.pt")


@login_required
@require_POST
def export(request, run_id: int, fmt: str):
    run = _get_run(request, run_id)
    if fmt not in EXPORTS:
        raise Http404("No such export format.")
    label, file_name, _ = EXPORTS[fmt]
    if run.status != Status.COMPLETE:
        messages.error(request, "Only a complete model can be exported.")
        return redirect(run)
    from training.export import export_model  # torch: only when exporting

    try:
        exported_path = run.folder / file_name
        exported_path.parent.mkdir(parents=True, exist_ok=True)
        result = export_model(stored_checkpoint(run), fmt, exported_path)
        storage.store_file(exported_path, f"{run.storage_prefix}/{file_name}")
    except (ValueError, RuntimeError, OSError, ImportError) as exc:  # CheckpointError
        message = hide_storage_paths(str(exc))
        messages.error(request, f"The {label} export failed: {message}")
        return redirect(run)
    exported = {"max_abs_diff_mm": result["max_abs_diff_mm"],
                "exported_at": timezone.now().isoformat()}  # fmt: skip
    TrainingRun.objects.filter(pk=run.pk).update(exports=run.exports | {fmt: exported})
    messages.success(request, f"Exported to {label}; it matches the PyTorch model "
                              f"to {result['max_abs_diff_mm']:.2g} mm.")  # fmt: skip
    return redirect(run)


@login_required
def download_export(request, run_id: int, fmt: str):
    run = _get_run(request, run_id)
    if fmt not in EXPORTS or fmt not in run.exports:
        raise Http404("This model has not been exported to that format.")
    _, file_name, suffix = EXPORTS[fmt]
    try:
        stored = storage.open_stored(f"{run.storage_prefix}/{file_name}")
    except FileNotFoundError:
        raise Http404("The export file is gone; export again.") from None
    filename = f"model-{run.pk}.{suffix}"
    return FileResponse(stored, as_attachment=True, filename=filename)


@login_required
def compare(request):
    ids = [request.GET.get("a", ""), request.GET.get("b", "")]
    if not all(i.isdigit() for i in ids):
        messages.error(request, "Choose two models to compare: one as A, one as B.")
        return redirect("registry")
    a, b = (_get_run(request, int(i)) for i in ids)
    context = {
        "a": a,
        "b": b,
        "runs": [a, b],
        "metric_rows": metric_rows(
            a.metrics.get("model"),
            a.metrics.get("baseline"),
            b.metrics.get("model"),
            b.metrics.get("baseline"),
        ),  # fmt: skip
        "per_joint": per_joint_chart(
            [(f"A: {a}", a.metrics.get("model")), (f"B: {b}", b.metrics.get("model"))]
        ),
    }
    return render(request, "registry/compare.html", context)


def metric_rows(*results: dict | None) -> list[dict]:
    """One row per metric (and per finger's MPJPE), a value for each result."""
    results = [r or {} for r in results]
    rows = [
        {"label": label, "unit": unit, "values": [r.get(key) for r in results]}
        for label, key, unit in METRICS
    ]
    fingers = (results[0] or {}).get("per_finger_mpjpe_mm", {})
    for finger in fingers:
        values = [r.get("per_finger_mpjpe_mm", {}).get(finger) for r in results]
        rows.append({"label": f"MPJPE, {finger}", "unit": "mm", "values": values})
    return rows


def per_joint_chart(series: list[tuple[str, dict | None]]) -> dict:
    """The per-joint error chart's data: (label, metrics of a model or baseline)."""
    return {
        "joints": list(MEDIAPIPE_JOINT_NAMES),
        "series": [{"label": label, "values": (part or {}).get("per_joint_mpjpe_mm")}
                   for label, part in series],
    }  # fmt: skip


def _exports(run: TrainingRun) -> list[dict]:
    return [
        {"format": fmt, "label": label, **run.exports.get(fmt, {}),
         "exported": fmt in run.exports}
        for fmt, (label, _, _) in EXPORTS.items()
    ]  # fmt: skip


def stored_checkpoint(run: TrainingRun) -> Path:
    """A local copy of the run's final.pt (a path that does not exist if it is
    not stored, for checkpoint_problem to name)."""
    try:
        return storage.local_copy(run.checkpoint_key)
    except FileNotFoundError:
        return run.checkpoint_path


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint cannot be offered, or None. Cheap and without torch: a
    torch.save file is a zip archive whose members carry checksums."""
    if not path.is_file():
        return "the file is missing"
    try:
        with zipfile.ZipFile(path) as archive:
            damaged_member = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return f"the file is damaged ({exc})"
    if damaged_member:
        return f"the file is damaged ({damaged_member} fails its checksum)"
    return None


def _attachment(path: Path, filename: str) -> FileResponse:
    return FileResponse(path.open("rb"), as_attachment=True, filename=filename)
