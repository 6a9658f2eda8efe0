"""The Django shell around recorder, labeling, training and inference.

The only package that imports Django."""

from webapp.celery import app as celery_app

__all__ = ["celery_app"]
