from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class GamificationConfig(AppConfig):
    name = "gamification"

    def ready(self) -> None:
        # Registers the cache warmers of leaderboards, home stats and achievements.
        from accounts.models import User
        from gamification import caching  # noqa: F401
        from gamification.receivers import user_deleted, user_saved

        post_save.connect(user_saved, sender=User, dispatch_uid="gamification.user_saved")
        post_delete.connect(user_deleted, sender=User, dispatch_uid="gamification.user_deleted")
