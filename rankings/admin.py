from django.contrib import admin
from django.http import HttpRequest

from rankings.models import ProductRanking


@admin.register(ProductRanking)
class ProductRankingAdmin(admin.ModelAdmin):
    """Read-only: rankings change through submissions, which keep counters and caches right."""

    list_display = ["user", "category", "position", "product", "points", "updated_at"]
    list_select_related = ["user", "product"]
    list_filter = ["position", "category"]
    search_fields = ["user__email", "product__name", "category"]
    ordering = ["-updated_at"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
