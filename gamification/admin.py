from django.contrib import admin
from django.http import HttpRequest

from adminops.admin_tools import (
    AuditedAdminMixin,
    ReadOnlyAdmin,
    reevaluate_achievements,
    warm_caches,
)
from gamification.models import (
    Achievement,
    ActivityLog,
    PageView,
    Streak,
    UserAchievement,
)


@admin.register(Achievement)
class AchievementAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "code",
        "metric",
        "threshold",
        "points",
        "is_hidden",
        "is_active",
        "order",
    ]
    list_filter = ["metric", "is_hidden", "is_active"]
    search_fields = ["code", "name"]
    prepopulated_fields = {"code": ["name"]}
    actions = [reevaluate_achievements, warm_caches]


@admin.register(UserAchievement)
class UserAchievementAdmin(ReadOnlyAdmin):
    list_display = ["user", "achievement", "level", "progress", "unlocked_at"]
    list_select_related = ["user", "achievement"]
    list_filter = [("unlocked_at", admin.EmptyFieldListFilter), "achievement"]
    search_fields = ["user__email", "achievement__code", "achievement__name"]
    # Newest first by primary key: an index every row is in, unlike the partial ones.
    ordering = ["-id"]


@admin.register(Streak)
class StreakAdmin(admin.ModelAdmin):
    list_display = ["user", "current_length", "longest_length", "last_active_date", "freezes_left"]
    list_select_related = ["user"]
    list_filter = ["last_active_date"]
    search_fields = ["user__email"]
    # The order of the streak_longest index, so a page of a big table needs no sort.
    ordering = ["-longest_length", "user"]
    raw_id_fields = ["user"]
    readonly_fields = ["updated_at"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ActivityLog)
class ActivityLogAdmin(ReadOnlyAdmin):
    """The ledger is append-only: corrections are new adjustment rows, made through the API."""

    list_display = ["created_at", "user", "kind", "points", "local_date", "actor", "reason"]
    list_select_related = ["user", "actor"]
    list_filter = ["kind"]
    search_fields = ["user__email", "reason"]
    ordering = ["-created_at"]


@admin.register(PageView)
class PageViewAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "path", "product", "user"]
    list_select_related = ["product", "user"]
    search_fields = ["path"]
    ordering = ["-created_at"]
