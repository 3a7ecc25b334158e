from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


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


class AuditLog(models.Model):
    """One thing an employee did (or a tool run from the command line, with no actor)."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when the action came from a management command.",
    )
    action = models.CharField(max_length=50, choices=AuditAction.choices)
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # audit_log_list: the newest actions first, optionally of one target.
            models.Index(fields=["-created_at"], name="audit_created"),
            models.Index(fields=["target_type", "target_id", "-created_at"], name="audit_target"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"
