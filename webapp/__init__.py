"""The Django shell around recorder/labeling/training/inference. The only Django package."""

from webapp.celery import app as celery_app

__all__ = ["celery_app"]
