from django.contrib import admin
from django.http import HttpRequest

from adminops.admin_tools import (
    AuditedAdminMixin,
    rebuild_ranking_stats,
    reevaluate_achievements,
    warm_caches,
)
from adminops.models import AuditLog
from gamification.models import Achievement
from products.models import Product, ProductMetadata

# The admin index links to the operations dashboard and tools.
admin.site.index_template = "adminops/index.html"


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """The audit trail: read-only, even for superusers."""

    list_display = ["created_at", "actor", "action", "target_type", "target_id", "reason"]
    list_filter = ["action", "target_type", "created_at"]
    search_fields = ["actor__email", "target_id", "reason"]
    list_select_related = ["actor"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    readonly_fields = [f.name for f in AuditLog._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditLog | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditLog | None = None) -> bool:
        return False


class ProductMetadataInline(admin.StackedInline):
    model = ProductMetadata
    fields = ["description", "attributes", "tags", "view_count", "ranking_count"]
    readonly_fields = ["view_count", "ranking_count"]
    can_delete = False


class ProductAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "brand", "category", "is_active", "updated_at"]
    list_filter = ["is_active", "category"]
    search_fields = ["name", "slug", "brand"]
    fields = ["name", "slug", "brand", "category", "image_url", "is_active", "created_at"]
    readonly_fields = ["created_at"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ProductMetadataInline]
    actions = [warm_caches, rebuild_ranking_stats]


class AchievementAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "code", "metric", "threshold", "points", "is_hidden", "is_active"]
    list_editable = ["is_active"]
    list_filter = ["metric", "is_hidden", "is_active"]
    search_fields = ["code", "name"]
    ordering = ["order", "id"]
    actions = [reevaluate_achievements, warm_caches]


# The catalogue and game apps may register their own admins (ahead of this app in
# INSTALLED_APPS); those should mix in adminops.admin_tools.AuditedAdminMixin.
for model, model_admin in ((Product, ProductAdmin), (Achievement, AchievementAdmin)):
    if not admin.site.is_registered(model):
        admin.site.register(model, model_admin)
