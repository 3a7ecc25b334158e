"""/admin/dashboard/: pages for employees, behind the admin's own sign-in."""

from django.contrib import admin
from django.urls import path

from adminops import dashboard

urlpatterns = [
    path("", admin.site.admin_view(dashboard.dashboard), name="adminops-dashboard"),
    path(
        "snapshot/",
        admin.site.admin_view(dashboard.dashboard_snapshot),
        name="adminops-dashboard-snapshot",
    ),
    path("analytics/", admin.site.admin_view(dashboard.analytics), name="adminops-analytics"),
    path("tools/", admin.site.admin_view(dashboard.tools), name="adminops-tools"),
]
