from django.apps import AppConfig


class RankingsConfig(AppConfig):
    name = "rankings"

    def ready(self) -> None:
        # Registers the ranking stats cache warmer.
        from config.caching import CacheType
        from config.fastpath import cached_route
        from rankings import selectors  # noqa: F401

        cached_route("category_stats", r"/api/rankings/stats/", types=[CacheType.RANKING_STATS])
        # The product's stats are shown only while it is active in the catalogue.
        cached_route(
            "product_stats",
            r"/api/rankings/stats/\d{1,18}/",
            types=[CacheType.PRODUCT_METADATA, CacheType.RANKING_STATS],
        )
