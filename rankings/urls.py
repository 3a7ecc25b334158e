from rest_framework.routers import SimpleRouter

from rankings.views import RankingViewSet

router = SimpleRouter()
router.register("", RankingViewSet, basename="ranking")

urlpatterns = router.urls
