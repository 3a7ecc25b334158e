"""Background work of the catalogue: each task calls products.services."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from products import services


@shared_task(name="products.tasks.searches_prune")
def searches_prune() -> int:
    return services.searches_prune(older_than=timedelta(days=settings.RETENTION_DAYS))


@shared_task(name="products.tasks.searches_rollup")
def searches_rollup() -> int:
    return services.searches_rollup()
