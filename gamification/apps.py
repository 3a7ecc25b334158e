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
        from gamification import selectors  # noqa: F401
        from products.signals import product_searched

        # A search may unlock the searches-made achievement.
        product_searched.connect(search_achievements_evaluate, dispatch_uid="gamification.search")
