from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def search_achievements_evaluate(sender: Any, *, user_id: int, **kwargs: Any) -> None:
    from accounts.models import User
    from gamification.models import Metric
    from gamification.services import achievements_evaluate

    achievements_evaluate(user=User.objects.get(pk=user_id), metrics=[Metric.SEARCHES_MADE])


class GamificationConfig(AppConfig):
    name = "gamification"

    def ready(self) -> None:
        # Registers the cache warmers of leaderboards, home stats and achievements.
        from accounts.models import User
        from config.caching import CacheType
        from config.fastpath import cached_route
        from gamification import caching
        from gamification.receivers import user_deleted, user_saved
        from products.signals import product_searched

        # A search may unlock the searches-made achievement.
        product_searched.connect(search_achievements_evaluate, dispatch_uid="gamification.search")
        cached_route("home_stats", r"/api/gamification/home-stats/", types=[CacheType.HOME_STATS])
        # The board of a window is the current period's: a stored answer lasts for its day.
        cached_route(
            "leaderboard",
            r"/api/gamification/leaderboard/",
            types=[CacheType.LEADERBOARD],
            varies_with=caching.leaderboard_day,
        )
        # Signed in, hidden achievements show once unlocked: only signed-out answers are stored.
        cached_route(
            "achievements",
            r"/api/gamification/achievements/",
            types=[CacheType.ACHIEVEMENT_DEFINITIONS],
        )
        post_save.connect(user_saved, sender=User, dispatch_uid="gamification.user_saved")
        post_delete.connect(user_deleted, sender=User, dispatch_uid="gamification.user_deleted")
