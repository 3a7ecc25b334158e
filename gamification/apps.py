from django.apps import AppConfig


class GamificationConfig(AppConfig):
    name = "gamification"

    def ready(self) -> None:
        # Registers the cache warmers of leaderboards, home stats and achievements.
        from config.caching import CacheType
        from config.fastpath import cached_route
        from gamification import selectors  # noqa: F401

        cached_route("home_stats", r"/api/gamification/home-stats/", types=[CacheType.HOME_STATS])
        # Signed in, hidden achievements show once unlocked: only signed-out answers are stored.
        cached_route(
            "achievements",
            r"/api/gamification/achievements/",
            types=[CacheType.ACHIEVEMENT_DEFINITIONS],
        )
