"""Cached Borda stats, kept rendered (see config.http_cache): a hit touches neither the
database nor a serializer. Each may be stale up to the ranking stats TTL."""

from config.caching import CacheType, cache_get_or_set, cache_warmer
from config.http_cache import RenderedJSON, json_render
from products.selectors import product_categories
from rankings import selectors
from rankings.serializers import CategoryStatsSerializer, ProductStatsSerializer


def category_stats_cached(*, category: str) -> RenderedJSON:
    return cache_get_or_set(
        CacheType.RANKING_STATS,
        f"category:{category}",
        lambda: json_render(
            CategoryStatsSerializer(selectors.category_stats(category=category), many=True).data
        ),
    )


def product_stats_cached(*, product_id: int) -> RenderedJSON:
    return cache_get_or_set(
        CacheType.RANKING_STATS,
        f"product:{product_id}",
        lambda: json_render(
            ProductStatsSerializer(selectors.ranking_stats_for_product(product_id=product_id)).data
        ),
    )


@cache_warmer(CacheType.RANKING_STATS)
def ranking_stats_warm() -> int:
    """Every category's stats: the reads behind category pages."""
    categories = [row["category"] for row in product_categories()]
    for category in categories:
        category_stats_cached(category=category)
    return len(categories)
