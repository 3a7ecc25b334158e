from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from adminops import selectors, services
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


class AuditedAdminMixin:
    """Admin edits recorded in the audit log, invalidating the caches the model feeds.

    Django's admin writes the row (and its inlines); `record` then audits it through the
    services. Deleting goes through the service, which refuses rows that history depends on.
    """

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        changed = list(form.changed_data)
        for formset in formsets:
            for inline_form in formset.forms:
                changed += [f"{formset.prefix}.{name}" for name in inline_form.changed_data]
        services.admin_edit_record(
            actor=request.user, instance=form.instance, created=not change, changed=changed
        )

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        if obj is not None and selectors.delete_blocker(instance=obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request: HttpRequest, obj) -> None:
        try:
            services.admin_delete(actor=request.user, instance=obj)
        except services.ActionRefused as exc:
            messages.error(request, str(exc))


@admin.action(description="Re-evaluate achievements over history (no notifications)")
def reevaluate_achievements(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    report = services.tool_achievements_reevaluate(actor=request.user)
    modeladmin.message_user(request, f"Achievements re-evaluated: {report['result']}")


@admin.action(description="Rebuild ranking stats")
def rebuild_ranking_stats(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    report = services.tool_ranking_stats_rebuild(actor=request.user)
    modeladmin.message_user(request, f"Ranking stats rebuilt: {report['result']}")


@admin.action(description="Warm every cache type")
def warm_caches(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    report = services.tool_caches_warm(actor=request.user)
    modeladmin.message_user(request, f"Caches warmed: {report['total']} keys {report['keys']}")


@admin.action(description="Rebuild every user's points from the ledger")
def rebuild_points(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    report = services.tool_points_rebuild(actor=request.user)
    modeladmin.message_user(
        request, f"Points rebuilt for {report['users']} users: {report['mismatches_fixed']} fixed"
    )


@admin.action(description="Exclude selected users from leaderboards")
def exclude_from_leaderboards(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    for user in queryset:
        services.user_leaderboard_exclusion_set(actor=request.user, user=user, excluded=True)
    modeladmin.message_user(request, f"{len(queryset)} users excluded from leaderboards")


@admin.action(description="Include selected users in leaderboards again")
def include_in_leaderboards(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    for user in queryset:
        services.user_leaderboard_exclusion_set(actor=request.user, user=user, excluded=False)
    modeladmin.message_user(request, f"{len(queryset)} users included in leaderboards")


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
# INSTALLED_APPS); those should mix in AuditedAdminMixin.
for model, model_admin in ((Product, ProductAdmin), (Achievement, AchievementAdmin)):
    if not admin.site.is_registered(model):
        admin.site.register(model, model_admin)
