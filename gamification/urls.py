from rest_framework.routers import SimpleRouter

from gamification.views import (
    AchievementViewSet,
    HomeStatsViewSet,
    LeaderboardViewSet,
    MeViewSet,
    PageViewViewSet,
)

router = SimpleRouter()
router.register("leaderboard", LeaderboardViewSet, basename="leaderboard")
router.register("home-stats", HomeStatsViewSet, basename="home-stats")
router.register("achievements", AchievementViewSet, basename="achievement")
router.register("me", MeViewSet, basename="me")
router.register("page-views", PageViewViewSet, basename="page-view")

urlpatterns = router.urls
