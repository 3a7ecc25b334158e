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


class JobKind(models.TextChoices):
    WARM_CACHES = "warm_caches", "Warm every cache type"
    REBUILD_POINTS = "rebuild_points", "Rebuild every user's points from the ledger"
    REBUILD_RANKING_STATS = "rebuild_ranking_stats", "Rebuild ranking stats"
    REEVALUATE_ACHIEVEMENTS = (
        "reevaluate_achievements",
        "Re-evaluate achievements over history (no notifications)",
    )
    IMPORT_PRODUCTS = "import_products", "Import products from CSV"


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class Job(models.Model):
    """One run of an employee tool in the background: its progress, then its report."""

    kind = models.CharField(max_length=50, choices=JobKind.choices)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # What the tool reads besides the database (the CSV of an import).
    params = models.JSONField(default=dict, blank=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(null=True, blank=True)
    report = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    # Moved forward while a worker runs the job; a running job past it has lost its worker.
    lease_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A second request for a tool that is queued or running gets that job back.
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(status__in=["queued", "running"]),
                name="job_one_active_per_kind",
            )
        ]
        indexes = [models.Index(fields=["-created_at"], name="job_created")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"
