"""Employee tools as background jobs: the 202 and the job resource, one run per tool, redelivery
after a worker died, recovery of lost messages, and the figures on /metrics and the dashboard."""

from datetime import timedelta

import pytest
from django.db import OperationalError, transaction
from django.utils import timezone

from accounts.models import User
from adminops import services
from adminops.models import AuditAction, AuditLog, Job, JobKind, JobStatus
from config import tasks
from config.services import tool_lock_owner, tool_running

pytestmark = pytest.mark.django_db


def test_a_tool_answers_202_with_the_queued_job_and_runs_it_after_commit(
    staff_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post("/api/tools/rebuild-points/")
    assert response.status_code == 202
    job = response.json()["job"]
    assert {"id", "kind", "status", "progress", "created_at"} <= set(job)
    assert (job["kind"], job["status"]) == ("rebuild_points", "queued")
    assert job["progress"] == {"done": 0, "total": None}
    assert not AuditLog.objects.filter(action=AuditAction.POINTS_REBUILD).exists()

    for callback in callbacks:
        callback()
    finished = staff_client.get(f"/api/tools/jobs/{job['id']}/").json()
    assert finished["status"] == "succeeded"
    assert finished["report"] == {"users": 1, "mismatches_fixed": 0}
    assert finished["started_at"] and finished["finished_at"]
    assert AuditLog.objects.filter(action=AuditAction.POINTS_REBUILD).count() == 1


def test_a_second_request_while_the_tool_is_queued_returns_that_job(
    staff_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        first = staff_client.post("/api/tools/warm-caches/")
        second = staff_client.post("/api/tools/warm-caches/")
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["job"]["id"] == second.json()["job"]["id"]
    assert Job.objects.count() == 1
    other = staff_client.post("/api/tools/rebuild-points/")
    assert other.status_code == 202


def test_a_rolled_back_request_queues_nothing(
    staff_user, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(tasks, "task_send", lambda name, **kwargs: sent.append(name))
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.job_start(kind=JobKind.REBUILD_POINTS, actor=staff_user)
        raise RuntimeError("the request failed after queueing")
    assert (callbacks, sent) == ([], [])
    assert not Job.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        services.job_start(kind=JobKind.REBUILD_POINTS, actor=staff_user)
    assert sent == ["adminops.tasks.job_run"]


def test_job_list_is_newest_first_and_filters_by_status(staff_client):
    old = Job.objects.create(
        kind=JobKind.WARM_CACHES,
        status=JobStatus.SUCCEEDED,
        created_at=timezone.now() - timedelta(hours=1),
    )
    new = Job.objects.create(kind=JobKind.REBUILD_POINTS)
    listed = staff_client.get("/api/tools/jobs/").json()["results"]
    assert [job["id"] for job in listed] == [new.pk, old.pk]
    queued = staff_client.get("/api/tools/jobs/?status=queued").json()["results"]
    assert [job["id"] for job in queued] == [new.pk]


def test_a_job_run_again_after_it_finished_changes_nothing(staff_user):
    job = Job.objects.create(kind=JobKind.REBUILD_POINTS, actor=staff_user)
    services.job_run(job_id=job.pk)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 1)
    assert AuditLog.objects.filter(action=AuditAction.POINTS_REBUILD).count() == 1


def test_a_redelivered_job_waits_while_its_lease_is_live(staff_user):
    job = Job.objects.create(
        kind=JobKind.REBUILD_POINTS,
        status=JobStatus.RUNNING,
        attempts=1,
        lease_until=timezone.now() + timedelta(seconds=30),
    )
    with pytest.raises(services.JobLeased) as leased:
        services.job_run(job_id=job.pk)
    assert 25 < leased.value.seconds <= 30
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 1)


def test_a_job_whose_worker_died_is_taken_over_with_the_locks_it_left(user):
    User.objects.filter(pk=user.pk).update(points=9)
    job = Job.objects.create(
        kind=JobKind.REBUILD_POINTS,
        status=JobStatus.RUNNING,
        attempts=1,
        lease_until=timezone.now() - timedelta(seconds=1),
    )
    # The dead run's lock on the tool, never released.
    with tool_lock_owner(f"job:{job.pk}"):
        tool_running(name="rebuild_points").__enter__()
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 2)
    assert job.report["mismatches_fixed"] == 1
    user.refresh_from_db()
    assert user.points == 0


def test_another_owner_of_the_tool_lock_fails_the_job_with_the_reason(staff_user):
    job = Job.objects.create(kind=JobKind.REBUILD_POINTS, actor=staff_user)
    with tool_running(name="rebuild_points"):
        services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "already running" in job.error


def test_a_transient_failure_puts_the_job_back_in_the_queue_for_a_retry(monkeypatch, staff_user):
    def database_restarting(**kwargs):
        raise OperationalError("the database system is starting up")

    monkeypatch.setitem(services.JOB_TOOLS, JobKind.WARM_CACHES, database_restarting)
    job = Job.objects.create(kind=JobKind.WARM_CACHES, actor=staff_user)
    with pytest.raises(OperationalError):
        services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.lease_until) == (JobStatus.QUEUED, None)


def test_a_broken_tool_fails_its_job_with_the_error(monkeypatch, staff_user):
    def broken(**kwargs):
        raise KeyError("missing column")

    monkeypatch.setitem(services.JOB_TOOLS, JobKind.WARM_CACHES, broken)
    job = Job.objects.create(kind=JobKind.WARM_CACHES, actor=staff_user)
    with pytest.raises(KeyError):
        services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == "KeyError: 'missing column'"
    assert job.finished_at is not None


def test_recovery_sends_lost_and_orphaned_jobs_again(django_capture_on_commit_callbacks):
    now = timezone.now()
    lost = Job.objects.create(kind=JobKind.WARM_CACHES, created_at=now - timedelta(minutes=5))
    Job.objects.create(kind=JobKind.REBUILD_POINTS, created_at=now)
    orphaned = Job.objects.create(
        kind=JobKind.REBUILD_RANKING_STATS,
        status=JobStatus.RUNNING,
        lease_until=now - timedelta(seconds=5),
    )
    Job.objects.create(
        kind=JobKind.REEVALUATE_ACHIEVEMENTS,
        status=JobStatus.RUNNING,
        lease_until=now + timedelta(seconds=30),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.jobs_recover() == 2
    lost.refresh_from_db()
    orphaned.refresh_from_db()
    assert lost.status == orphaned.status == JobStatus.SUCCEEDED
    assert Job.objects.filter(status__in=["queued", "running"]).count() == 2


def test_metrics_export_jobs_by_kind_and_outcome_and_their_durations(staff_client):
    start = timezone.now() - timedelta(seconds=10)
    Job.objects.create(
        kind=JobKind.WARM_CACHES,
        status=JobStatus.SUCCEEDED,
        started_at=start,
        finished_at=start + timedelta(seconds=3),
    )
    Job.objects.create(
        kind=JobKind.WARM_CACHES,
        status=JobStatus.FAILED,
        started_at=start,
        finished_at=start + timedelta(seconds=20),
    )
    body = staff_client.get("/metrics").content.decode()
    assert 'rankly_jobs{kind="warm_caches",status="succeeded"} 1.0' in body
    assert 'rankly_jobs{kind="warm_caches",status="failed"} 1.0' in body
    assert 'rankly_job_duration_seconds_bucket{kind="warm_caches",le="5.0"} 1.0' in body
    assert 'rankly_job_duration_seconds_bucket{kind="warm_caches",le="30.0"} 2.0' in body
    assert 'rankly_job_duration_seconds_count{kind="warm_caches"} 2.0' in body


def test_the_dashboard_snapshot_lists_running_jobs_with_their_progress(admin_client):
    Job.objects.create(
        kind=JobKind.REBUILD_POINTS, status=JobStatus.RUNNING, done=4000, total=10000
    )
    Job.objects.create(kind=JobKind.WARM_CACHES, status=JobStatus.SUCCEEDED)
    snapshot = admin_client.get("/admin/dashboard/snapshot/").json()
    assert [(j["kind"], j["done"], j["total"]) for j in snapshot["jobs"]] == [
        ("rebuild_points", 4000, 10000)
    ]
