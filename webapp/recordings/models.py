"""Subjects and recording sessions. Every row belongs to one user."""

from django.conf import settings
from django.db import models
from django.urls import reverse

HANDEDNESS = [("right", "Right"), ("left", "Left")]


class Subject(models.Model):
    """A person whose arm is recorded (often the user themself)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subjects"
    )
    name = models.CharField(max_length=100)
    handedness = models.CharField(max_length=5, choices=HANDEDNESS, default="right")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "name"], name="unique_subject_name"
            )
        ]

    def __str__(self) -> str:
        return self.name


class RecordingSession(models.Model):
    class Status(models.TextChoices):
        CREATED = "created", "Ready to record"
        RECORDING = "recording", "Recording"
        STOPPING = "stopping", "Stopping"
        ASSEMBLING = "assembling", "Saving file"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="recording_sessions",
    )
    subject = models.ForeignKey(
        Subject, on_delete=models.PROTECT, related_name="sessions"
    )
    band_placement = models.CharField(
        max_length=200,
        default="right forearm, 5 cm below the elbow",
        help_text="which arm and where along it",
    )
    band_rotation_deg = models.FloatField(
        default=0.0, help_text="rotation of electrode 1 from the top of the forearm"
    )
    protocol_name = models.CharField(max_length=100, default="free")
    notes = models.TextField(blank=True)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.CREATED
    )
    agent = models.ForeignKey(
        "accounts.AgentToken",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sessions",
    )
    device_info = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # filled when the agent reports the end of the recording
    expected_chunks = models.PositiveIntegerField(null=True, blank=True)
    expected_samples = models.PositiveBigIntegerField(null=True, blank=True)
    stop_reason = models.CharField(max_length=200, blank=True)
    # filled when the session file is assembled
    sample_count = models.PositiveBigIntegerField(default=0)
    duration_s = models.FloatField(default=0.0)
    dropped_packets = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to="sessions/", blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Session {self.pk} of {self.subject}"

    def get_absolute_url(self) -> str:
        return reverse("session", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.RECORDING, self.Status.STOPPING)


class SessionVideo(models.Model):
    """A session's webcam video, which the agent kept on the laptop (--save-video)
    and sends only when the owner asks for it (see webapp/recordings/video.py)."""

    class State(models.TextChoices):
        REQUESTED = "requested", "Requested"  # waiting for the agent to send it
        COMPLETE = "complete", "Uploaded"
        FAILED = "failed", "Not sent"  # `message` says why

    session = models.OneToOneField(
        RecordingSession, on_delete=models.CASCADE, related_name="video"
    )
    state = models.CharField(
        max_length=10, choices=State.choices, default=State.REQUESTED
    )
    message = models.TextField(blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    # set only once a whole file is stored and its SHA-256 checked
    file = models.FileField(upload_to="videos/", blank=True)
    frames_file = models.FileField(upload_to="videos/", blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    uploaded_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Video of session {self.session_id} ({self.state})"
