"""The task plumbing: the beat schedule names real tasks, tasks retry what passes on its own,
refresh-ahead replaces hot cache entries before they expire."""

import pytest
from django.conf import settings
from django.db import OperationalError

from config.caching import WARMERS, CacheType, cache_get_or_set
from config.celery import app
from config.tasks import RanklyTask, caches_refresh_ahead


def test_every_scheduled_task_exists_and_runs_at_least_as_often_as_promised():
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name
    assert settings.CELERY_BEAT_SCHEDULE["page-views-flush"]["schedule"] <= 10
    # Refreshed before the 5-minute TTL of the hottest entries ends.
    assert settings.CELERY_BEAT_SCHEDULE["caches-refresh-ahead-short"]["schedule"] < 5 * 60


def test_tasks_are_acknowledged_late_and_given_back_when_their_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.broker_transport_options["visibility_timeout"] >= 60 * 60
    task = app.tasks["adminops.tasks.job_run"]
    assert isinstance(task, RanklyTask)
    assert OperationalError in task.autoretry_for
    assert task.retry_backoff


@pytest.mark.django_db
def test_refresh_ahead_recomputes_hot_entries_that_are_still_cached(monkeypatch):
    computed = iter(["first", "second"])

    def warm() -> int:
        cache_get_or_set(CacheType.HOME_STATS, "probe", lambda: next(computed))
        return 1

    monkeypatch.setitem(WARMERS, CacheType.HOME_STATS, [warm])
    warm()
    assert cache_get_or_set(CacheType.HOME_STATS, "probe", lambda: "cold") == "first"
    assert caches_refresh_ahead.apply(kwargs={"cache_types": ["home_stats"]}).get() == 1
    assert cache_get_or_set(CacheType.HOME_STATS, "probe", lambda: "cold") == "second"
