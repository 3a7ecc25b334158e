"""Employees' tools: cache flushes and warming, rebuilds over all users. Every run is audited.

Writes of the catalogue and the game live in their apps' services; these tools call them.
"""

import logging
from typing import Any

from accounts.models import User
from config.audit import AuditAction, audit_record
from config.caching import WARMERS, CacheType, cache_invalidate, cache_types_invalidate_on_commit
from config.services import Progress, tool_running
from gamification.services import LEADERBOARD_CACHE_TYPES, achievements_reevaluate, points_rebuild
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


def tool_caches_warm(*, actor: User | None) -> dict[str, Any]:
    keys, failed = cache_warm_all()
    report = {"keys": keys, "total": sum(keys.values()), "failed": failed}
    audit_record(actor=actor, action=AuditAction.CACHE_WARM, data=report)
    return report


def tool_points_rebuild(
    *, actor: User | None, on_progress: Progress | None = None
) -> dict[str, Any]:
    """Make every user's points the sum of their ledger; report how many were wrong.

    With a progress callback it goes user by user so that a long run shows where it is;
    otherwise it is one call for all users.
    """

    with tool_running(name="rebuild_points"):
        if on_progress is None:
            users, fixed = User.objects.count(), points_rebuild()
        else:
            users, fixed = User.objects.count(), 0
            for done, user in enumerate(User.objects.order_by("pk").iterator(), start=1):
                fixed += points_rebuild(user=user)
                on_progress(done, users)
    report = {"users": users, "mismatches_fixed": fixed}
    audit_record(actor=actor, action=AuditAction.POINTS_REBUILD, data=report)
    if fixed:
        cache_types_invalidate_on_commit(cache_types=LEADERBOARD_CACHE_TYPES)
    return report


def tool_ranking_stats_rebuild(*, actor: User | None) -> dict[str, Any]:
    with tool_running(name="rebuild_ranking_stats"):
        report = {"result": ranking_stats_rebuild()}
    audit_record(actor=actor, action=AuditAction.RANKING_STATS_REBUILD, data=report)
    cache_types_invalidate_on_commit(
        cache_types=(CacheType.RANKING_STATS, CacheType.PRODUCT_METADATA, CacheType.HOME_STATS)
    )
    return report


def tool_achievements_reevaluate(*, actor: User | None) -> dict[str, Any]:
    """Award what the history earns and was never awarded; no notification is sent."""
    with tool_running(name="reevaluate_achievements"):
        report = {"result": achievements_reevaluate(notify=False)}
    audit_record(actor=actor, action=AuditAction.ACHIEVEMENTS_REEVALUATE, data=report)
    return report
