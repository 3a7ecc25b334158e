from django.apps import AppConfig


class RankingsConfig(AppConfig):
    name = "rankings"

    def ready(self) -> None:
        # Registers the ranking stats cache warmer.
        from gamification.hooks import metric_source_register
        from gamification.models import Metric
        from products.hooks import product_detail_part_register
        from rankings import selectors
        from rankings.caching import product_stats_cached

        # A product's detail carries its ranking stats; the game counts categories ranked.
        product_detail_part_register(name="ranking_stats", part=product_stats_cached)
        metric_source_register(
            metric=Metric.CATEGORIES_RANKED, source=selectors.categories_ranked_count
        )
