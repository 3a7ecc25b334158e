"""Admin building blocks for any app's ModelAdmin: audited edits and the tool actions.

Importing this module registers nothing, so other apps' admin modules can use it freely.
"""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.services import user_leaderboard_exclusion_set
from adminops import services
from config.services import ActionRefused
from gamification.models import Achievement
from gamification.selectors import achievement_delete_blocker
from gamification.services import achievement_admin_edit_record, achievement_delete
from products.models import Product
from products.selectors import product_delete_blocker
from products.services import product_admin_edit_record, product_delete


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records the application writes itself: employees look, they do not add or edit.

    `records_deletable` lets employees delete rows nothing depends on (old codes, searches).
    """

    records_deletable = False
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return self.records_deletable and super().has_delete_permission(request, obj)


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
        if isinstance(form.instance, Product):
            product_admin_edit_record(
                actor=request.user, product=form.instance, created=not change, changed=changed
            )
        else:
            achievement_admin_edit_record(
                actor=request.user, achievement=form.instance, created=not change, changed=changed
            )

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        if isinstance(obj, Product) and product_delete_blocker(product=obj):
            return False
        if isinstance(obj, Achievement) and achievement_delete_blocker(achievement=obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request: HttpRequest, obj) -> None:
        try:
            if isinstance(obj, Product):
                product_delete(actor=request.user, product=obj)
            else:
                achievement_delete(actor=request.user, achievement=obj)
        except ActionRefused as exc:
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
        user_leaderboard_exclusion_set(actor=request.user, user=user, excluded=True)
    modeladmin.message_user(request, f"{len(queryset)} users excluded from leaderboards")


@admin.action(description="Include selected users in leaderboards again")
def include_in_leaderboards(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    for user in queryset:
        user_leaderboard_exclusion_set(actor=request.user, user=user, excluded=False)
    modeladmin.message_user(request, f"{len(queryset)} users included in leaderboards")
