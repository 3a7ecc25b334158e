from django.contrib import admin

from config.admin import ReadOnlyAdmin
from rankings.models import ProductRanking


@admin.register(ProductRanking)
class ProductRankingAdmin(ReadOnlyAdmin):
    """Read-only: rankings change through submissions, which keep counters and caches right."""

    list_display = ["user", "category", "position", "product", "points", "updated_at"]
    list_select_related = ["user", "product"]
    list_filter = ["position", "category"]
    search_fields = ["user__email", "product__name", "category"]
    ordering = ["-updated_at"]
