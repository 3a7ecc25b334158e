"""/api/admin/: employees edit the catalogue and the game, and read the caches and metrics."""

from rest_framework.routers import SimpleRouter

from adminops import views

router = SimpleRouter()
router.register("products", views.AdminProductViewSet, basename="admin-product")
router.register("achievements", views.AdminAchievementViewSet, basename="admin-achievement")
router.register("users", views.AdminUserViewSet, basename="admin-user")
router.register("caches", views.CacheViewSet, basename="admin-cache")
router.register("metrics", views.MetricsViewSet, basename="admin-metrics")
router.register("analytics", views.AnalyticsViewSet, basename="admin-analytics")
router.register("audit-log", views.AuditLogViewSet, basename="admin-audit")

urlpatterns = router.urls
