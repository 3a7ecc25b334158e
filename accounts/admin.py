from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.authentication import request_user
from accounts.models import LoginCode, User, UserSession, normalize_email
from accounts.services import (
    DAY_FIELDS,
    user_deactivate,
    user_leaderboard_exclusion_set,
    user_session_end,
    user_sessions_end_all,
)
from config.admin import ReadOnlyAdmin


@admin.action(description="Exclude selected users from leaderboards")
def exclude_from_leaderboards(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    for user in queryset:
        user_leaderboard_exclusion_set(actor=request_user(request), user=user, excluded=True)
    modeladmin.message_user(request, f"{len(queryset)} users excluded from leaderboards")


@admin.action(description="Include selected users in leaderboards again")
def include_in_leaderboards(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    for user in queryset:
        user_leaderboard_exclusion_set(actor=request_user(request), user=user, excluded=False)
    modeladmin.message_user(request, f"{len(queryset)} users included in leaderboards")


@admin.action(description="Sign out of every device (tokens, cookies and open sockets)")
def sign_out_everywhere(modeladmin, request: HttpRequest, queryset: QuerySet[User]) -> None:
    for user in queryset:
        user_sessions_end_all(user=user)


class _EmailFormMixin:
    cleaned_data: dict[str, Any]

    def clean_email(self) -> str:
        # Stored canonically, so a duplicate spelt differently fails validation, not the database.
        try:
            return normalize_email(self.cleaned_data["email"])
        except ValueError as error:
            raise forms.ValidationError(str(error)) from error


class UserCreationForm(_EmailFormMixin, AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserAdminChangeForm(_EmailFormMixin, UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserAdminChangeForm
    add_form = UserCreationForm
    ordering = ["email"]
    list_display = [
        "email",
        "display_name",
        "handle",
        "points",
        "is_staff",
        "is_active",
        "leaderboard_excluded",
        "date_joined",
    ]
    list_filter = [
        "is_staff",
        "is_superuser",
        "is_active",
        "leaderboard_opt_out",
        "leaderboard_excluded",
    ]
    search_fields = ["email", "display_name", "handle"]
    show_full_result_count = False
    # The employee tools add their own actions (adminops.admin).
    actions = [exclude_from_leaderboards, include_in_leaderboards, sign_out_everywhere]
    # Points are the ledger's sum: they change through point adjustments, never by hand.
    # The day rule changes only through user_day_change, which never cuts a day short.
    readonly_fields = [
        "handle",
        "points",
        "last_login",
        "date_joined",
        *DAY_FIELDS,
    ]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["display_name", "points"]}),
        ("Day", {"fields": DAY_FIELDS}),
        ("Leaderboard", {"fields": ["leaderboard_opt_out", "leaderboard_excluded"]}),
        (
            "Permissions",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]

    def save_model(self, request: HttpRequest, obj: User, form, change: bool) -> None:
        excluded = obj.leaderboard_excluded
        exclusion_changed = change and "leaderboard_excluded" in form.changed_data
        if exclusion_changed:
            # The exclusion goes through its service, which audits it and refills the boards.
            obj.leaderboard_excluded = form.initial["leaderboard_excluded"]
        super().save_model(request, obj, form, change)
        if exclusion_changed:
            user_leaderboard_exclusion_set(actor=request_user(request), user=obj, excluded=excluded)
        if change and "is_active" in form.changed_data and not obj.is_active:
            # Every sign-in of the user ends with it, open sockets included.
            user_deactivate(user=obj)

    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "usable_password", "password1", "password2"],
            },
        ),
    ]


@admin.register(LoginCode)
class LoginCodeAdmin(ReadOnlyAdmin):
    """Read-only: codes are made by sign-in requests and only their hashes are kept."""

    list_display = ["email", "created_at", "expires_at", "attempts", "used_at"]
    list_filter = [("used_at", admin.EmptyFieldListFilter)]
    search_fields = ["email"]
    ordering = ["-created_at"]
    records_deletable = True


@admin.register(UserSession)
class UserSessionAdmin(admin.ModelAdmin):
    """Signed-in devices; deleting one signs that device out (token and cookie)."""

    list_display = ["user", "device", "ip_address", "created_at", "last_seen_at"]
    list_select_related = ["user"]
    search_fields = ["user__email", "device", "ip_address"]
    ordering = ["-last_seen_at"]
    readonly_fields = [
        "user",
        "token_hash",
        "session_key",
        "device",
        "ip_address",
        "created_at",
        "last_seen_at",
    ]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: UserSession) -> None:
        user_session_end(user_session=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[UserSession]) -> None:
        for user_session in queryset:
            user_session_end(user_session=user_session)
