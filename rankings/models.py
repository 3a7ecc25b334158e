from django.conf import settings
from django.db import models
from django.utils import timezone

MAX_RANKED_PRODUCTS = 10


def borda_points(position: int) -> int:
    """First place is worth MAX_RANKED_PRODUCTS points, tenth place 1, whatever the list length."""
    return MAX_RANKED_PRODUCTS + 1 - position


class ProductRanking(models.Model):
    """One product in a user's current ranking of one category (position 1 is best)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rankings", db_index=False
    )
    product = models.ForeignKey(
        "products.Product", on_delete=models.CASCADE, related_name="rankings", db_index=False
    )
    category = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField()
    points = models.PositiveSmallIntegerField(help_text="Borda points of this position.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "product"], name="ranking_user_product_unique"),
            models.CheckConstraint(
                condition=models.Q(position__gte=1, position__lte=MAX_RANKED_PRODUCTS),
                name="ranking_position_range",
            ),
        ]
        indexes = [
            # rankings_for_user: a user's ranking of a category, in order (and its replacement).
            models.Index(fields=["user", "category", "position"], name="ranking_user_cat_pos"),
            # ranking_stats_for_category: Borda totals of every product of a category.
            models.Index(fields=["category", "product", "points"], name="ranking_cat_product"),
            # rankings_per_category_per_day: one first place per ranking, by day (index-only) ...
            models.Index(
                fields=["created_at", "category"],
                name="ranking_created_cat",
                condition=models.Q(position=1),
            ),
            # ... and of one category.
            models.Index(
                fields=["category", "created_at"],
                name="ranking_cat_created",
                condition=models.Q(position=1),
            ),
            # product_rank_movement, ranking_stats_for_product: a product's positions, by day.
            models.Index(
                fields=["product", "created_at", "position"], name="ranking_product_created"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: #{self.position} {self.product_id}"
