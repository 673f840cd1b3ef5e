"""posture: compliance posture of Docker fleets (Django project and its single app)."""

from .celery import app as celery_app

__all__ = ("celery_app",)
