from django.contrib import admin

from webapp.recordings.models import RecordingSession, Subject


@admin.register(Subject)
class SubjectAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "handedness", "created_at"]


@admin.register(RecordingSession)
class RecordingSessionAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "owner",
        "subject",
        "status",
        "sample_count",
        "dropped_packets",
        "created_at",
    ]
    list_filter = ["status"]
