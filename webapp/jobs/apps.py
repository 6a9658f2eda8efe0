from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "webapp.jobs"
    label = "jobs"

    def ready(self):
        from webapp.jobs import workers  # noqa: F401 (connects the worker signals)
