from django.apps import AppConfig


class RankingsConfig(AppConfig):
    name = "rankings"

    def ready(self) -> None:
        # Registers the ranking stats cache warmer.
        from config.caching import CacheType
        from config.fastpath import cached_route, cached_route_depends
        from gamification.hooks import metric_source_register
        from gamification.models import Metric
        from products.hooks import product_detail_part_register
        from rankings import selectors
        from rankings.caching import product_stats_cached

        # A product's detail carries its ranking stats; the game counts categories ranked.
        product_detail_part_register(name="ranking_stats", part=product_stats_cached)
        cached_route_depends("product_detail", types=[CacheType.RANKING_STATS])
        metric_source_register(
            metric=Metric.CATEGORIES_RANKED,
            source=selectors.categories_ranked_count,
            source_many=selectors.categories_ranked_counts,
        )
        cached_route("category_stats", r"/api/rankings/stats/", types=[CacheType.RANKING_STATS])
        # The product's stats are shown only while it is active in the catalogue.
        cached_route(
            "product_stats",
            r"/api/rankings/stats/\d{1,18}/",
            types=[CacheType.PRODUCT_METADATA, CacheType.RANKING_STATS],
        )
