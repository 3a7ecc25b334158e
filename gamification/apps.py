from typing import Any

from django.apps import AppConfig


def search_achievements_evaluate(sender: Any, *, user_id: int, **kwargs: Any) -> None:
    from accounts.models import User
    from gamification.models import Metric
    from gamification.services import achievements_evaluate

    achievements_evaluate(user=User.objects.get(pk=user_id), metrics=[Metric.SEARCHES_MADE])


class GamificationConfig(AppConfig):
    name = "gamification"

    def ready(self) -> None:
        # Registers the cache warmers of leaderboards, home stats and achievements.
        from config.caching import CacheType
        from config.fastpath import cached_route
        from gamification import selectors  # noqa: F401
        from products.signals import product_searched

        # A search may unlock the searches-made achievement.
        product_searched.connect(search_achievements_evaluate, dispatch_uid="gamification.search")
        cached_route("home_stats", r"/api/gamification/home-stats/", types=[CacheType.HOME_STATS])
        # Signed in, hidden achievements show once unlocked: only signed-out answers are stored.
        cached_route(
            "achievements",
            r"/api/gamification/achievements/",
            types=[CacheType.ACHIEVEMENT_DEFINITIONS],
        )
