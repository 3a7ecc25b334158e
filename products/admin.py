from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from accounts.authentication import request_user
from config.admin import AuditedAdminMixin, ReadOnlyAdmin
from products.models import Product, ProductMetadata, UserProductSearch
from products.selectors import product_delete_blocker
from products.services import (
    METADATA_FIELDS,
    product_admin_edit_record,
    product_delete,
    product_update,
)

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

    def edit_record(
        self, request: HttpRequest, obj: Product, created: bool, changed: list[str]
    ) -> None:
        product_admin_edit_record(
            actor=request_user(request), product=obj, created=created, changed=changed
        )

    def delete_through_service(self, request: HttpRequest, obj: Product) -> None:
        product_delete(actor=request_user(request), product=obj)

    def delete_refusal(self, obj: Product) -> str | None:
        return product_delete_blocker(product=obj)

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

    def save_model(self, request: HttpRequest, obj: ProductMetadata, form, change: bool) -> None:
        metadata = {
            name: form.cleaned_data[name] for name in form.changed_data if name in METADATA_FIELDS
        }
        product_update(
            actor=request_user(request), product=obj.product, fields={}, metadata=metadata
        )


@admin.register(UserProductSearch)
class UserProductSearchAdmin(ReadOnlyAdmin):
    """Read-only: a record of what people searched."""

    list_display = ["query", "user", "result_count", "created_at"]
    list_select_related = ["user"]
    list_filter = ["created_at"]
    search_fields = ["query", "user__email"]
    ordering = ["-created_at"]
    records_deletable = True
