from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from accounts.authentication import request_user
from config.admin import AuditedAdminMixin, ReadOnlyAdmin
from gamification.models import (
    Achievement,
    ActivityLog,
    PageView,
    Streak,
    UserAchievement,
)
from gamification.selectors import achievement_delete_blocker
from gamification.services import (
    achievement_admin_edit_record,
    achievement_delete,
    streak_admin_edit,
    streak_lengths_refusal,
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

    def edit_record(
        self, request: HttpRequest, obj: Achievement, created: bool, changed: list[str]
    ) -> None:
        achievement_admin_edit_record(
            actor=request_user(request), achievement=obj, created=created, changed=changed
        )

    def delete_through_service(self, request: HttpRequest, obj: Achievement) -> None:
        achievement_delete(actor=request_user(request), achievement=obj)

    def delete_refusal(self, obj: Achievement) -> str | None:
        return achievement_delete_blocker(achievement=obj)


@admin.register(UserAchievement)
class UserAchievementAdmin(ReadOnlyAdmin):
    list_display = ["user", "achievement", "level", "progress", "unlocked_at"]
    list_select_related = ["user", "achievement"]
    list_filter = [("unlocked_at", admin.EmptyFieldListFilter), "achievement"]
    search_fields = ["user__email", "achievement__code", "achievement__name"]
    # Newest first by primary key: an index every row is in, unlike the partial ones.
    ordering = ["-id"]


class StreakAdminForm(forms.ModelForm):
    class Meta:
        model = Streak
        fields = ["user", "current_length", "longest_length", "last_active_date", "freezes_left"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        current, longest = cleaned.get("current_length"), cleaned.get("longest_length")
        if current is not None and longest is not None:
            refusal = streak_lengths_refusal(current_length=current, longest_length=longest)
            if refusal:
                raise forms.ValidationError(refusal)
        return cleaned


@admin.register(Streak)
class StreakAdmin(admin.ModelAdmin):
    """Streak edits are repairs: audited, and sent to the user's open pages."""

    form = StreakAdminForm
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

    def save_model(self, request: HttpRequest, obj: Streak, form, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in form.changed_data}
        streak_admin_edit(actor=request_user(request), streak=obj, fields=fields)


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
