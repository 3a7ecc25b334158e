"""Background work of the game: each task calls gamification.services."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from gamification import services
from gamification.boards import Window


@shared_task(name="gamification.tasks.page_views_flush")
def page_views_flush() -> int:
    return services.page_views_flush()


@shared_task(name="gamification.tasks.page_views_prune")
def page_views_prune() -> int:
    return services.page_views_prune(older_than=timedelta(days=settings.RETENTION_DAYS))


@shared_task(name="gamification.tasks.period_points_prune")
def period_points_prune() -> int:
    return services.period_points_prune(keep=settings.PERIOD_POINTS_KEEP_PAST)


@shared_task(name="gamification.tasks.leaderboard_rebuild")
def leaderboard_rebuild(*, window: Window) -> int | None:
    return services.leaderboard_rebuild_requested(window=window)


@shared_task(name="gamification.tasks.leaderboard_ladders_store")
def leaderboard_ladders_store() -> int:
    return services.leaderboard_ladders_store()


@shared_task(name="gamification.tasks.page_views_rollup")
def page_views_rollup() -> int:
    return services.page_views_rollup()
