"""The form that starts a training run, with cheap checks of the chosen sessions."""

from __future__ import annotations

from django import forms

from recorder.session_file import SessionFormatError, session_summary
from webapp import storage
from webapp.recordings.models import RecordingSession
from webapp.registry.models import hide_storage_paths


def model_names() -> tuple[str, ...]:
    from training.models import MODEL_NAMES  # the zoo (imports torch): on demand

    return tuple(MODEL_NAMES)


def recorded_sessions(owner):
    """The owner's own sessions, and only those that have a file."""
    return (
        RecordingSession.objects.filter(owner=owner)
        .exclude(file="")
        .select_related("subject")
    )


class SessionChoices(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, session: RecordingSession) -> str:
        return (
            f"#{session.pk} · {session.subject} · {session.protocol_name} · "
            f"{session.duration_s:.0f} s"
        )


class TrainingForm(forms.Form):
    name = forms.CharField(max_length=100, required=False,
                           help_text="optional; the registry shows it")  # fmt: skip
    train_sessions = SessionChoices(RecordingSession.objects.none(),
                                    label="Training sessions")  # fmt: skip
    validation_sessions = SessionChoices(
        RecordingSession.objects.none(), label="Held-out validation sessions",
        help_text="whole sessions the model never trains on: they measure it",
    )  # fmt: skip
    model_name = forms.ChoiceField(label="Model type", initial="v5")  # the seed's
    epochs = forms.IntegerField(min_value=1, max_value=1000, initial=100)
    batch_size = forms.IntegerField(min_value=1, max_value=4096, initial=256)

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        sessions = recorded_sessions(owner)
        self.fields["train_sessions"].queryset = sessions
        self.fields["validation_sessions"].queryset = sessions
        self.fields["model_name"].choices = [(name, name) for name in model_names()]

    def clean(self):
        cleaned = super().clean()
        train = set(cleaned.get("train_sessions") or [])
        held_out = set(cleaned.get("validation_sessions") or [])
        if train & held_out:
            overlap = ", ".join(f"#{s.pk}" for s in sorted(train & held_out, key=_pk))
            raise forms.ValidationError(
                f"Session {overlap} cannot be both trained on and held out."
            )
        if train and held_out:
            check_session_files(sorted(train | held_out, key=_pk))
        return cleaned

    def training_config(self) -> dict:
        """The TrainConfig fields besides model and epochs."""
        return {"batch_size": self.cleaned_data["batch_size"]}


def check_session_files(sessions: list[RecordingSession]) -> None:
    """ValidationError for a file that cannot be read, has no label track, or has
    another channel count than the rest. Reads only metadata; whether frames are
    labeled is checked by the training engine when the run starts."""
    channels = {}
    for session in sessions:
        try:
            summary = session_summary(storage.local_copy(session.file.name))
        except (OSError, SessionFormatError) as exc:
            raise forms.ValidationError(
                f"Session #{session.pk}: its file cannot be read "
                f"({hide_storage_paths(str(exc))})."
            ) from None
        if not summary["has_labels"]:
            raise forms.ValidationError(
                f"Session #{session.pk} has no label track (it was recorded without "
                "the webcam), so there is nothing to learn from."
            )
        channels[session.pk] = len(summary["channels"])
    if len(set(channels.values())) > 1:
        counts = ", ".join(f"#{pk}: {n}" for pk, n in channels.items())
        raise forms.ValidationError(
            f"The sessions have different channel counts ({counts}); choose "
            "sessions recorded with the same armband."
        )


def _pk(session: RecordingSession) -> int:
    return session.pk


class CalibrationChoice(forms.ModelChoiceField):
    def label_from_instance(self, session: RecordingSession) -> str:
        return SessionChoices.label_from_instance(self, session)


OWN_SESSION_ONLY = {
    "invalid_choice": "Choose one of your own sessions that has a file; that "
    "session is not one of them."
}


class FineTuneForm(forms.Form):
    """Fine-tune a finished model for one person: their calibration recording, and
    optionally another of their sessions to measure the result on."""

    calibration_session = CalibrationChoice(
        RecordingSession.objects.none(), label="Calibration session",
        error_messages=OWN_SESSION_ONLY,
        help_text="the person's labeled calibration recording (the 1-minute "
        "protocol); the model adapts to it",
    )  # fmt: skip
    held_out_session = CalibrationChoice(
        RecordingSession.objects.none(), required=False, label="Held-out session",
        error_messages=OWN_SESSION_ONLY,
        help_text="optional, another session of the same person to measure on; "
        "without one, the calibration's last 20% is held out",
    )  # fmt: skip
    epochs = forms.IntegerField(min_value=1, max_value=200, initial=15)
    learning_rate = forms.FloatField(min_value=1e-6, max_value=1e-2, initial=1e-3)
    name = forms.CharField(max_length=100, required=False)

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        sessions = recorded_sessions(owner)
        self.fields["calibration_session"].queryset = sessions
        self.fields["held_out_session"].queryset = sessions

    def clean(self):
        cleaned = super().clean()
        calibration = cleaned.get("calibration_session")
        held_out = cleaned.get("held_out_session")
        if calibration and calibration == held_out:
            raise forms.ValidationError(
                f"Session #{calibration.pk} cannot be both the calibration and the "
                "held-out session."
            )
        if calibration:
            check_session_files([s for s in (calibration, held_out) if s])
        return cleaned

    def finetune_config(self) -> dict:
        """The FineTuneConfig fields besides epochs."""
        return {"learning_rate": self.cleaned_data["learning_rate"]}
