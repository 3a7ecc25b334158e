"""/api/tools/: bulk repairs and imports for employees."""

from rest_framework.routers import SimpleRouter

from adminops import views

router = SimpleRouter()
router.register("jobs", views.JobViewSet, basename="tool-job")
router.register("", views.ToolViewSet, basename="tool")

urlpatterns = router.urls
