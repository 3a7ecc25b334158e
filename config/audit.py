"""The audit hook: services record what an employee did; the app that keeps the trail stores it.

Every app's services call `audit_record`; the audit trail's app connects `audit_recorded` in its
`AppConfig.ready()`. The receiver runs inside the caller's transaction, so a write and its entry
commit or roll back together.
"""

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models
from django.dispatch import Signal

audit_recorded = Signal()


class AuditAction(models.TextChoices):
    PRODUCT_CREATE = "product.create", "Product created"
    PRODUCT_UPDATE = "product.update", "Product updated"
    PRODUCT_DELETE = "product.delete", "Product deleted"
    ACHIEVEMENT_CREATE = "achievement.create", "Achievement created"
    ACHIEVEMENT_UPDATE = "achievement.update", "Achievement updated"
    ACHIEVEMENT_DELETE = "achievement.delete", "Achievement deleted"
    POINTS_ADJUST = "points.adjust", "Points adjusted"
    LEADERBOARD_EXCLUSION = "leaderboard.exclusion", "Leaderboard exclusion set"
    STREAK_REPAIR = "streak.repair", "Streak repaired"
    CACHE_FLUSH = "cache.flush", "Cache type flushed"
    CACHE_WARM = "tool.warm_caches", "Caches warmed"
    POINTS_REBUILD = "tool.rebuild_points", "Points rebuilt from the ledger"
    RANKING_STATS_REBUILD = "tool.rebuild_ranking_stats", "Ranking stats rebuilt"
    ACHIEVEMENTS_REEVALUATE = "tool.reevaluate_achievements", "Achievements re-evaluated"
    PRODUCTS_IMPORT = "tool.import_products", "Products imported from CSV"


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: AuditAction,
    target_type: str = "",
    target_id: object = "",
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    audit_recorded.send(
        sender=AuditAction,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        reason=reason,
        data=data or {},
    )
