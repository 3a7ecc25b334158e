from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.authentication import request_user
from accounts.models import User
from adminops import services
from adminops.models import AuditLog
from config.admin import ReadOnlyAdmin
from gamification.models import Achievement
from products.models import Product

# The admin index links to the operations dashboard and tools.
admin.site.index_template = "adminops/index.html"


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """The audit trail: read-only, even for superusers."""

    list_display = ["created_at", "actor", "action", "target_type", "target_id", "reason"]
    list_filter = ["action", "target_type", "created_at"]
    search_fields = ["actor__email", "target_id", "reason"]
    list_select_related = ["actor"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    readonly_fields = [f.name for f in AuditLog._meta.fields]


@admin.action(description="Re-evaluate achievements over history (no notifications)")
def reevaluate_achievements(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    report = services.tool_achievements_reevaluate(actor=request_user(request))
    modeladmin.message_user(request, f"Achievements re-evaluated: {report['result']}")


@admin.action(description="Rebuild ranking stats")
def rebuild_ranking_stats(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    report = services.tool_ranking_stats_rebuild(actor=request_user(request))
    modeladmin.message_user(request, f"Ranking stats rebuilt: {report['result']}")


@admin.action(description="Warm every cache type")
def warm_caches(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    report = services.tool_caches_warm(actor=request_user(request))
    modeladmin.message_user(request, f"Caches warmed: {report['total']} keys {report['keys']}")


@admin.action(description="Rebuild every user's points from the ledger")
def rebuild_points(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    report = services.tool_points_rebuild(actor=request_user(request))
    modeladmin.message_user(
        request, f"Points rebuilt for {report['users']} users: {report['mismatches_fixed']} fixed"
    )


# The tools sit on the change lists of the rows they concern; the apps below know no tool.
TOOL_ACTIONS = {
    User: [rebuild_points],
    Product: [warm_caches, rebuild_ranking_stats],
    Achievement: [reevaluate_achievements, warm_caches],
}
for model, tool_actions in TOOL_ACTIONS.items():
    model_admin = admin.site.get_model_admin(model)
    model_admin.actions = [*(model_admin.actions or ()), *tool_actions]
