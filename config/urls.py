from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.health import healthz, readyz
from config.metrics import MetricsView

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("admin/dashboard/", include("adminops.dashboard_urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file, so the page needs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("api/customer/", include("accounts.urls")),
    path("api/products/", include("products.urls")),
    path("api/rankings/", include("rankings.urls")),
    path("api/gamification/", include("gamification.urls")),
    path("api/admin/", include("adminops.urls")),
    path("api/tools/", include("adminops.tool_urls")),
]

handler400 = "config.api.json_bad_request"
handler404 = "config.api.json_not_found"
handler500 = "config.api.json_server_error"
