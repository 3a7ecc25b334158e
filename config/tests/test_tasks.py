"""The task plumbing: the beat schedule names real tasks, tasks retry what passes on its own,
refresh-ahead replaces hot cache entries before they expire."""

import smtplib
from queue import Empty

import pytest
from django.conf import settings
from django.db import OperationalError
from kombu import Connection

from adminops import services
from adminops.models import JobKind, JobStatus
from config.caching import WARMERS, CacheType, cache_get_or_set
from config.celery import app
from config.metrics import queue_lengths
from config.tasks import RanklyTask, caches_refresh_ahead
from config.tests.private_redis import free_port, private_redis
from config.tests.worker import sending_to


def test_every_scheduled_task_exists_and_runs_at_least_as_often_as_promised():
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name
    assert settings.CELERY_BEAT_SCHEDULE["page-views-flush"]["schedule"] <= 10
    # Refreshed before the 5-minute TTL of the hottest entries ends.
    assert settings.CELERY_BEAT_SCHEDULE["caches-refresh-ahead-short"]["schedule"] < 5 * 60
    # Closed days are rolled up within the hour after midnight.
    assert settings.CELERY_BEAT_SCHEDULE["page-views-rollup"]["schedule"] <= 60 * 60
    assert settings.CELERY_BEAT_SCHEDULE["searches-rollup"]["schedule"] <= 60 * 60


def test_periodic_runs_that_waited_past_their_period_are_dropped():
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert 0 < entry["options"]["expires"] <= entry["schedule"], name


def test_tasks_are_acknowledged_late_and_given_back_when_their_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.broker_transport_options["visibility_timeout"] == 4 * 60 * 60
    for name in ("adminops.tasks.job_run", "gamification.tasks.page_views_flush"):
        task = app.tasks[name]
        assert isinstance(task, RanklyTask)
        assert {OperationalError, smtplib.SMTPException} <= set(task.autoretry_for)
        assert (task.retry_backoff, task.retry_backoff_max, task.max_retries) == (2, 60, 20)


@pytest.mark.django_db
def test_a_task_the_broker_cannot_take_runs_in_the_sending_process(
    staff_user, django_capture_on_commit_callbacks
):
    with (
        sending_to(f"redis://127.0.0.1:{free_port()}/0"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        job, _ = services.job_start(kind=JobKind.REBUILD_POINTS, actor=staff_user)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED


@pytest.mark.redis
@pytest.mark.django_db
def test_queue_lengths_count_the_messages_waiting_in_the_broker(
    staff_user, admin_client, django_capture_on_commit_callbacks
):
    with private_redis() as redis_server, sending_to(redis_server.url):
        with django_capture_on_commit_callbacks(execute=True):
            services.job_start(kind=JobKind.WARM_CACHES, actor=staff_user)
            services.job_start(kind=JobKind.REBUILD_POINTS, actor=staff_user)
        assert queue_lengths() == {"default": 0, "mail": 0, "tools": 2}
        assert admin_client.get("/admin/dashboard/snapshot/").json()["queues"]["tools"] == 2


@pytest.mark.redis
@pytest.mark.django_db
def test_runs_with_their_own_broker_prefix_never_take_each_others_tasks(
    staff_user, django_capture_on_commit_callbacks
):
    def consumer(url: str, prefix: str) -> Connection:
        options = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": prefix}
        return Connection(url, transport_options=options)

    assert settings.BROKER_KEY_PREFIX.startswith(settings.TEST_RUN_PREFIX)
    with private_redis() as redis_server, sending_to(redis_server.url):
        with django_capture_on_commit_callbacks(execute=True):
            services.job_start(kind=JobKind.WARM_CACHES, actor=staff_user)
        # Another test run, and a worker of a deployment without a prefix, find nothing.
        for other in ("rankly-test-other:", ""):
            with consumer(redis_server.url, other) as connection, pytest.raises(Empty):
                connection.SimpleQueue("tools").get(block=False)
        with consumer(redis_server.url, settings.BROKER_KEY_PREFIX) as connection:
            message = connection.SimpleQueue("tools").get(timeout=5)
            assert message.headers["task"] == "adminops.tasks.job_run"
            message.ack()


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
