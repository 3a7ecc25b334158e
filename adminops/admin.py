from django.contrib import admin

from adminops.admin_tools import ReadOnlyAdmin
from adminops.models import AuditLog

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
