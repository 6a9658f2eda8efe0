from django.contrib import admin

from webapp.jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["pk", "kind", "owner", "session", "status", "progress_done",
                    "progress_total", "created_at"]  # fmt: skip
    list_filter = ["kind", "status"]
