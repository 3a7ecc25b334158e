"""Reads for employees: the audit trail, cache figures and the operations snapshot."""

import time
from typing import Any

from django.db.models import Q, QuerySet

from adminops.models import AuditLog
from config.caching import cache_stats
from config.metrics import metrics_snapshot
from gamification.models import Achievement
from products.models import Product
from realtime.presence import open_socket_count, users_online_count


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


def dashboard_snapshot() -> dict[str, Any]:
    """What the operations dashboard plots at one instant.

    Counters are cumulative; the page turns two snapshots into rates.
    """
    metrics = metrics_snapshot()
    requests = metrics["requests"]
    return {
        "ts": time.time(),
        "instance": metrics["instance"],
        "requests_total": requests["count"],
        "status_classes": metrics["responses"],
        "latency_ms": {q: requests[f"{q}_ms"] for q in ("p50", "p95", "p99")},
        "cache_hit_rate": {row["type"]: row["hit_rate"] for row in cache_stats_report()},
        "open_websockets": open_socket_count(),
        "online_users": users_online_count(),
    }
