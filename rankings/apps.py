from django.apps import AppConfig


class RankingsConfig(AppConfig):
    name = "rankings"

    def ready(self) -> None:
        # Registers the ranking stats cache warmer.
        from rankings import selectors  # noqa: F401
