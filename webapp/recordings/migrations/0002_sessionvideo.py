import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("recordings", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="SessionVideo",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("requested", "Requested"),
                            ("complete", "Uploaded"),
                            ("failed", "Not sent"),
                        ],
                        default="requested",
                        max_length=10,
                    ),
                ),
                ("message", models.TextField(blank=True)),
                ("requested_at", models.DateTimeField(blank=True, null=True)),
                ("file", models.FileField(blank=True, upload_to="videos/")),
                ("frames_file", models.FileField(blank=True, upload_to="videos/")),
                ("size_bytes", models.PositiveBigIntegerField(default=0)),
                ("sha256", models.CharField(blank=True, max_length=64)),
                ("uploaded_at", models.DateTimeField(blank=True, null=True)),
                (
                    "session",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="video",
                        to="recordings.recordingsession",
                    ),
                ),
            ],
        ),
    ]
