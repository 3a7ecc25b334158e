from django.contrib import admin
from django.db import models

from adminops.admin_tools import (
    AuditedAdminMixin,
    ReadOnlyAdmin,
    rebuild_ranking_stats,
    warm_caches,
)
from products.models import Product, ProductMetadata, UserProductSearch

# Counters kept by the ranking and page-view services; the admin shows them, never edits them.
COUNTERS = ["view_count", "ranking_count"]


class ProductMetadataInline(admin.StackedInline):
    model = ProductMetadata
    can_delete = False
    readonly_fields = [*COUNTERS, "updated_at"]


@admin.register(Product)
class ProductAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "brand", "category", "is_active", "ranking_count", "updated_at"]
    list_select_related = ["metadata"]
    list_filter = ["is_active", "category"]
    search_fields = ["name", "slug", "brand", "category"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at", "updated_at"]
    inlines = [ProductMetadataInline]
    actions = [warm_caches, rebuild_ranking_stats]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(ordering="metadata__ranking_count")
    def ranking_count(self, product: Product) -> int | None:
        metadata = getattr(product, "metadata", None)
        return metadata.ranking_count if metadata else None


@admin.register(ProductMetadata)
class ProductMetadataAdmin(admin.ModelAdmin):
    list_display = ["product", *COUNTERS, "updated_at"]
    list_select_related = ["product"]
    search_fields = ["product__name", "product__slug"]
    autocomplete_fields = ["product"]
    readonly_fields = [*COUNTERS, "updated_at"]
    ordering = ["-ranking_count", "product"]


@admin.register(UserProductSearch)
class UserProductSearchAdmin(ReadOnlyAdmin):
    """Read-only: a record of what people searched."""

    list_display = ["query", "user", "result_count", "created_at"]
    list_select_related = ["user"]
    list_filter = ["created_at"]
    search_fields = ["query", "user__email"]
    ordering = ["-created_at"]
    records_deletable = True
