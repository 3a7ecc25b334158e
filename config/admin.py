"""Admin building blocks for any app's ModelAdmin: read-only records and edits through services.

Importing this module registers nothing, so every app's admin module can use it freely.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.contrib import admin, messages
from django.db import models
from django.forms import BaseFormSet, ModelForm
from django.http import HttpRequest

from config.services import ActionRefused

M = TypeVar("M", bound=models.Model)

if TYPE_CHECKING:
    # django-stubs makes ModelAdmin generic; at run time it is not subscriptable.
    _ModelAdmin = admin.ModelAdmin[Any]
    # The mixin is always combined with a ModelAdmin, whose methods it extends.
    _AdminMixinBase = admin.ModelAdmin[Any]
else:
    _ModelAdmin = admin.ModelAdmin
    _AdminMixinBase = object


class ReadOnlyAdmin(_ModelAdmin):
    """Records the application writes itself: employees look, they do not add or edit.

    `records_deletable` lets employees delete rows nothing depends on (old codes, searches).
    """

    records_deletable = False
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return self.records_deletable and super().has_delete_permission(request, obj)


class AuditedAdminMixin(Generic[M], _AdminMixinBase):
    """Admin edits recorded through the app's services: audit, events and caches, once.

    Django's admin writes the row (and its inlines); `edit_record` (the app's service) then
    audits it and invalidates what it feeds. Deleting goes through `delete_through_service`,
    which refuses rows that history depends on; `delete_refusal` hides the button for those.
    """

    def edit_record(self, request: HttpRequest, obj: M, created: bool, changed: list[str]) -> None:
        raise NotImplementedError

    def delete_through_service(self, request: HttpRequest, obj: M) -> None:
        raise NotImplementedError

    def delete_refusal(self, obj: M) -> str | None:
        raise NotImplementedError

    def save_related(
        self,
        request: HttpRequest,
        form: ModelForm[Any],
        formsets: list[BaseFormSet[Any]],
        change: bool,
    ) -> None:
        super().save_related(request, form, formsets, change)
        changed = list(form.changed_data)
        for formset in formsets:
            for inline_form in formset.forms:
                changed += [f"{formset.prefix}.{name}" for name in inline_form.changed_data]
        self.edit_record(request, form.instance, not change, changed)

    def has_delete_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        if obj is not None and self.delete_refusal(obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request: HttpRequest, obj: M) -> None:
        try:
            self.delete_through_service(request, obj)
        except ActionRefused as exc:
            messages.error(request, str(exc))
