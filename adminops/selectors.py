"""Reads for employees: the audit trail, cache figures and the operations snapshot."""

import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from adminops.models import ACTIVE_JOB_STATUSES, AuditLog, Job
from config.caching import cache_stats
from config.metrics import INSTANCE, JobFigures, queue_lengths
from config.ops_history import ops_figures
from gamification.models import Achievement
from products.models import Product
from realtime.presence import users_online_count

DASHBOARD_WINDOW_SECONDS = 60


def audit_log_list(*, target_type: str = "", target_id: str = "") -> QuerySet[AuditLog]:
    """Employee actions, newest first (indexes audit_created, audit_target)."""
    entries = AuditLog.objects.select_related("actor")
    if target_type:
        entries = entries.filter(target_type=target_type)
        if target_id:
            entries = entries.filter(target_id=target_id)
    return entries.order_by("-created_at", "-id")


def admin_product_list(*, search: str = "") -> QuerySet[Product]:
    """Every product, active or not, for employees."""
    products = Product.objects.select_related("metadata")
    if search:
        products = products.filter(
            Q(name__icontains=search) | Q(slug__icontains=search) | Q(brand__icontains=search)
        )
    return products.order_by("name", "id")


def admin_achievement_list() -> QuerySet[Achievement]:
    return Achievement.objects.order_by("order", "id")


def cache_stats_report() -> list[dict[str, Any]]:
    """Per cache type: hits, misses and hit rate (None before the first lookup) in this process."""
    report = []
    for cache_type, counts in cache_stats().items():
        lookups = counts["hits"] + counts["misses"]
        report.append(
            {
                "type": cache_type,
                **counts,
                "hit_rate": round(counts["hits"] / lookups, 4) if lookups else None,
            }
        )
    return report


def dashboard_thresholds() -> dict[str, float]:
    return {
        "p99_ms": settings.OPS_ALERT_P99_MS,
        "error_5xx_percent": settings.OPS_ALERT_5XX_PERCENT,
        "error_4xx_percent": settings.OPS_ALERT_4XX_PERCENT,
        "cache_hit_percent": settings.OPS_ALERT_CACHE_HIT_PERCENT,
    }


def dashboard_alerts(
    *, figures: dict[str, Any], thresholds: dict[str, float]
) -> list[dict[str, Any]]:
    """The latest window of each live instance and of their sum that crosses a threshold:
    p99 or an error rate above it, the cache hit rate below it."""
    alerts = []
    latest = {name: points[-1] for name, points in figures["instances"].items() if points}
    if figures["total"]:
        latest["all instances"] = figures["total"][-1]
    for where, point in latest.items():
        for figure, threshold in thresholds.items():
            value = point[figure]
            if value is None:
                continue
            crossed = value < threshold if figure == "cache_hit_percent" else value > threshold
            if crossed:
                alerts.append(
                    {"where": where, "figure": figure, "value": value, "threshold": threshold}
                )
    return alerts


def dashboard_snapshot() -> dict[str, Any]:
    """What the operations dashboard plots: the last hour of every live instance and of their
    sum, each point a rate or percentile over the 60 s before it, and the alerts raised now."""
    figures = ops_figures(window=DASHBOARD_WINDOW_SECONDS)
    thresholds = dashboard_thresholds()
    return {
        "ts": time.time(),
        "instance": INSTANCE,
        "sample_seconds": settings.OPS_SAMPLE_SECONDS,
        **figures,
        "thresholds": thresholds,
        "alerts": dashboard_alerts(figures=figures, thresholds=thresholds),
        "online_users": users_online_count(),
        "jobs": jobs_active(),
        "queues": queue_lengths(),
    }


def job_list(*, status: str = "") -> QuerySet[Job]:
    """Tool runs, newest first (index job_created), optionally of one status."""
    jobs = Job.objects.defer("params")
    if status:
        jobs = jobs.filter(status=status)
    return jobs.order_by("-created_at", "-id")


def jobs_active() -> list[dict[str, Any]]:
    """Queued and running jobs with their progress, for the operations dashboard."""
    return [
        {
            "id": job.pk,
            "kind": job.kind,
            "status": job.status,
            "done": job.done,
            "total": job.total,
            "created_at": job.created_at.isoformat(),
        }
        for job in Job.objects.defer("params", "report")
        .filter(status__in=ACTIVE_JOB_STATUSES)
        .order_by("created_at")
    ]


# Durations on /metrics cover the jobs finished this recently.
JOB_DURATION_WINDOW = timedelta(days=7)


def job_figures() -> JobFigures:
    """Jobs by (kind, status), and the durations of those finished in the last week."""
    counts = {
        (row["kind"], row["status"]): row["jobs"]
        for row in Job.objects.values("kind", "status").annotate(jobs=Count("id"))
    }
    durations: dict[str, list[float]] = {}
    finished = Job.objects.filter(
        finished_at__gte=timezone.now() - JOB_DURATION_WINDOW, started_at__isnull=False
    ).values_list("kind", "started_at", "finished_at")
    for kind, started_at, finished_at in finished:
        if started_at is not None and finished_at is not None:
            durations.setdefault(kind, []).append((finished_at - started_at).total_seconds())
    return JobFigures(counts=counts, durations=durations)
