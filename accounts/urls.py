from rest_framework.routers import SimpleRouter

from accounts.views import CustomerViewSet, UserSessionViewSet

# The customer API's paths have no trailing slash.
router = SimpleRouter(trailing_slash=False)
router.register("sessions", UserSessionViewSet, basename="session")
router.register("", CustomerViewSet, basename="customer")

urlpatterns = router.urls
