from django.contrib import admin

from webapp.registry.models import TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["pk", "name", "model_name", "owner", "status", "epoch", "epochs",
                    "created_at"]  # fmt: skip
    list_filter = ["model_name", "status"]
    filter_horizontal = ["train_sessions", "validation_sessions"]
