from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from config.audit import AuditAction


class AuditLog(models.Model):
    """One thing an employee did (or a tool run from the command line, with no actor)."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when the action came from a management command.",
    )
    action = models.CharField(max_length=50, choices=AuditAction.choices)
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # audit_log_list: the newest actions first, optionally of one target.
            models.Index(fields=["-created_at"], name="audit_created"),
            models.Index(fields=["target_type", "target_id", "-created_at"], name="audit_target"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"
