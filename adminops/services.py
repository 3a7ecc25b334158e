"""Employees' tools: cache flushes and warming, rebuilds over all users. Every run is audited.

Writes of the catalogue and the game live in their apps' services; these tools call them.
"""

import logging
import threading
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone

from accounts.models import User
from adminops.models import ACTIVE_JOB_STATUSES, Job, JobKind, JobStatus
from config.audit import AuditAction, audit_record
from config.caching import WARMERS, CacheType, cache_invalidate, cache_types_invalidate_on_commit
from config.rollups import rollup_day_check
from config.services import ActionRefused, Progress, tool_lock_owner, tool_running
from config.tasks import TRANSIENT_ERRORS, task_enqueue_on_commit, tasks_run_in_process
from gamification.services import (
    LEADERBOARD_CACHE_TYPES,
    achievements_reevaluate,
    page_views_rollup_day,
    points_rebuild,
)
from products import importing
from products.services import searches_rollup_day
from rankings.services import ranking_stats_rebuild

logger = logging.getLogger(__name__)


# --- Caches ---------------------------------------------------------------------------------


def cache_flush(*, actor: User, cache_type: CacheType) -> None:
    cache_invalidate(cache_type)
    audit_record(
        actor=actor, action=AuditAction.CACHE_FLUSH, target_type="cache", target_id=cache_type
    )


def cache_warm_all() -> tuple[dict[str, int], list[str]]:
    """Run every registered warmer: keys written per cache type, and the warmers that failed."""
    keys: dict[str, int] = dict.fromkeys((t.value for t in CacheType), 0)
    failed = []
    for cache_type in CacheType:
        for warm in WARMERS[cache_type]:
            try:
                keys[cache_type.value] += warm()
            except Exception:
                # One broken warmer must not stop the others; the report names it.
                logger.exception("Cache warmer %s failed", warm.__name__)
                failed.append(f"{cache_type.value}: {warm.__name__}")
    return keys, failed


# --- Tools ----------------------------------------------------------------------------------


def tool_caches_warm(*, actor: User | None, on_progress: Progress | None = None) -> dict[str, Any]:
    keys, failed = cache_warm_all()
    report = {"keys": keys, "total": sum(keys.values()), "failed": failed}
    audit_record(actor=actor, action=AuditAction.CACHE_WARM, data=report)
    return report


def tool_points_rebuild(
    *, actor: User | None, on_progress: Progress | None = None
) -> dict[str, Any]:
    """Make every user's points the sum of their ledger, in batches; report how many were wrong."""
    with tool_running(name="rebuild_points"):
        users = User.objects.count()
        fixed = points_rebuild(on_progress=on_progress)
    report = {"users": users, "mismatches_fixed": fixed}
    audit_record(actor=actor, action=AuditAction.POINTS_REBUILD, data=report)
    if fixed:
        cache_types_invalidate_on_commit(cache_types=LEADERBOARD_CACHE_TYPES)
    return report


def tool_ranking_stats_rebuild(
    *, actor: User | None, on_progress: Progress | None = None
) -> dict[str, Any]:
    with tool_running(name="rebuild_ranking_stats"):
        report = {"result": ranking_stats_rebuild()}
    audit_record(actor=actor, action=AuditAction.RANKING_STATS_REBUILD, data=report)
    cache_types_invalidate_on_commit(
        cache_types=(CacheType.RANKING_STATS, CacheType.PRODUCT_METADATA, CacheType.HOME_STATS)
    )
    return report


def tool_achievements_reevaluate(
    *, actor: User | None, on_progress: Progress | None = None
) -> dict[str, Any]:
    """Award what the history earns and was never awarded; no notification is sent."""
    with tool_running(name="reevaluate_achievements"):
        report = {"result": achievements_reevaluate(notify=False, on_progress=on_progress)}
    audit_record(actor=actor, action=AuditAction.ACHIEVEMENTS_REEVALUATE, data=report)
    return report


class ToolFailed(Exception):
    """The tool ran and refused its input; the report says why."""

    def __init__(self, message: str, *, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


def _tool_import_products(
    *, actor: User | None, params: dict[str, Any], on_progress: Progress
) -> dict[str, Any]:
    report = importing.products_import_csv(
        actor=actor,
        text=params["text"],
        all_or_nothing=params.get("all_or_nothing", False),
        on_progress=on_progress,
    )
    if not report.applied:
        raise ToolFailed(
            f"{len(report.rejected)} rows rejected; nothing was imported.", report=report.as_dict()
        )
    return report.as_dict()


# --- Background jobs ------------------------------------------------------------------------

JOB_TOOLS: dict[str, Callable[..., dict[str, Any]]] = {
    JobKind.WARM_CACHES: lambda *, actor, params, on_progress: tool_caches_warm(
        actor=actor, on_progress=on_progress
    ),
    JobKind.REBUILD_POINTS: lambda *, actor, params, on_progress: tool_points_rebuild(
        actor=actor, on_progress=on_progress
    ),
    JobKind.REBUILD_RANKING_STATS: lambda *, actor, params, on_progress: tool_ranking_stats_rebuild(
        actor=actor, on_progress=on_progress
    ),
    JobKind.REEVALUATE_ACHIEVEMENTS: lambda *, actor, params, on_progress: (
        tool_achievements_reevaluate(actor=actor, on_progress=on_progress)
    ),
    JobKind.IMPORT_PRODUCTS: _tool_import_products,
}


class JobLeased(Exception):
    """Another worker holds the job's lease: try again once it may have expired."""

    def __init__(self, *, seconds: float) -> None:
        super().__init__(f"job leased for {seconds:.0f} s more")
        self.seconds = seconds


def analytics_rollup(*, first: date, last: date) -> int:
    """Recompute the page-view and search roll-ups of every day from `first` to `last`
    (closed days within the retention period; safe to rerun); returns the days rolled up."""
    if first > last:
        raise ActionRefused("The first day comes after the last.")
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    for day in (first, last):
        try:
            rollup_day_check(day)
        except ValueError as error:
            raise ActionRefused(str(error)) from error
    for day in days:
        page_views_rollup_day(day=day)
        searches_rollup_day(day=day)
    return len(days)


def job_start(
    *, kind: JobKind, actor: User | None, params: dict[str, Any] | None = None
) -> tuple[Job, bool]:
    """Queue a run of a tool, or return the run of it already queued or running.

    Returns (job, created). The task is sent once the job's row is committed.
    """
    with transaction.atomic():
        active = Job.objects.filter(kind=kind, status__in=ACTIVE_JOB_STATUSES).first()
        if active is not None:
            return active, False
        try:
            with transaction.atomic():
                job = Job.objects.create(kind=kind, actor=actor, params=params or {})
        except IntegrityError:
            # Another request queued the same tool between the read and the insert.
            return Job.objects.get(kind=kind, status__in=ACTIVE_JOB_STATUSES), False
        task_enqueue_on_commit("adminops.tasks.job_run", kwargs={"job_id": job.pk})
    return job, True


def _job_claim(*, job_id: int) -> Job | None:
    """Mark the job running under a fresh lease; None when it has finished already."""
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status not in ACTIVE_JOB_STATUSES:
            return None
        if job.status == JobStatus.RUNNING and job.lease_until and job.lease_until > now:
            raise JobLeased(seconds=(job.lease_until - now).total_seconds())
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.started_at = job.started_at or now
        job.lease_until = now + timedelta(seconds=settings.JOBS_LEASE_SECONDS)
        job.save(update_fields=["status", "attempts", "started_at", "lease_until"])
    return job


class _Heartbeat:
    """Keeps a running job's lease and progress current from a thread of its own (with its own
    database connection), so progress shows even while the tool holds a transaction open."""

    def __init__(self, *, job_id: int, threaded: bool) -> None:
        self.job_id = job_id
        self.done = 0
        self.total: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True) if threaded else None

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def __enter__(self) -> "_Heartbeat":
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    def _run(self) -> None:
        interval = min(1.0, settings.JOBS_LEASE_SECONDS / 4)
        try:
            while not self._stop.wait(interval):
                try:
                    self.beat()
                except Exception:
                    # The database restarting: the next beat tries again.
                    logger.warning("Job %s: heartbeat failed", self.job_id, exc_info=True)
                    close_old_connections()
        finally:
            connection.close()

    def beat(self) -> None:
        lease = timezone.now() + timedelta(seconds=settings.JOBS_LEASE_SECONDS)
        Job.objects.filter(pk=self.job_id, status=JobStatus.RUNNING).update(
            done=self.done, total=self.total, lease_until=lease
        )


def _job_finish(
    *, job: Job, status: JobStatus, report: dict[str, Any], error: str, beat: _Heartbeat
) -> None:
    Job.objects.filter(pk=job.pk).update(
        status=status,
        report=report,
        error=error,
        done=beat.done,
        total=beat.total,
        lease_until=None,
        finished_at=timezone.now(),
    )


def job_run(*, job_id: int) -> None:
    """Run a queued job to its end; safe to call again for the same job (a redelivery).

    Raises JobLeased while another worker runs it, and a transient error after putting the job
    back in the queue, so that the task retries later.
    """
    job = _job_claim(job_id=job_id)
    if job is None:
        return
    run = JOB_TOOLS[job.kind]
    # Eager runs (no broker) happen inside the request: nobody can watch them progress.
    with _Heartbeat(job_id=job.pk, threaded=not tasks_run_in_process()) as beat:
        try:
            with tool_lock_owner(f"job:{job.pk}"):
                report = run(actor=job.actor, params=job.params, on_progress=beat.progress)
        except (ActionRefused, ToolFailed) as refusal:
            report = getattr(refusal, "report", {})
            _job_finish(
                job=job, status=JobStatus.FAILED, report=report, error=str(refusal), beat=beat
            )
            return
        except TRANSIENT_ERRORS:
            Job.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED, lease_until=None)
            raise
        except Exception as error:
            _job_finish(
                job=job,
                status=JobStatus.FAILED,
                report={},
                error=f"{type(error).__name__}: {error}",
                beat=beat,
            )
            raise
    if beat.total is None:
        beat.done = beat.total = 1
    _job_finish(job=job, status=JobStatus.SUCCEEDED, report=report, error="", beat=beat)


def jobs_recover(*, queued_for_seconds: int = 120) -> int:
    """Send again the jobs whose message was lost (a Redis restart without persistence) or whose
    worker died (a lease run out); a job sent twice still runs once. Returns how many were sent."""
    now = timezone.now()
    lost = Job.objects.filter(
        status=JobStatus.QUEUED, created_at__lt=now - timedelta(seconds=queued_for_seconds)
    ) | Job.objects.filter(status=JobStatus.RUNNING, lease_until__lt=now)
    job_ids = list(lost.values_list("pk", flat=True))
    for job_id in job_ids:
        task_enqueue_on_commit("adminops.tasks.job_run", kwargs={"job_id": job_id})
    return len(job_ids)
