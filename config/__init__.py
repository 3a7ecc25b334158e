# Loaded with Django, so that every task binds to Rankly's Celery app and its settings.
from config.celery import app as celery_app

__all__ = ("celery_app",)
