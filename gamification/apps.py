from django.apps import AppConfig


class GamificationConfig(AppConfig):
    name = "gamification"

    def ready(self) -> None:
        # Registers the cache warmers of leaderboards, home stats and achievements.
        from gamification import selectors  # noqa: F401
