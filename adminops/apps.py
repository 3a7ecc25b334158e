from typing import Any

from django.apps import AppConfig


def audit_store(
    sender: Any,
    *,
    actor: Any,
    action: str,
    target_type: str,
    target_id: str,
    reason: str,
    data: dict[str, Any],
    **kwargs: Any,
) -> None:
    from adminops.models import AuditLog

    AuditLog.objects.create(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        reason=reason,
        data=data,
    )


class AdminopsConfig(AppConfig):
    name = "adminops"

    def ready(self) -> None:
        from adminops.selectors import job_figures
        from config.audit import audit_recorded
        from config.metrics import job_figures_register

        # The trail of what employees did, written in the same transaction as the edit.
        audit_recorded.connect(audit_store, dispatch_uid="adminops.audit_store")
        # Jobs by kind and outcome, and their durations, on /metrics of every instance.
        job_figures_register(reader=job_figures)
