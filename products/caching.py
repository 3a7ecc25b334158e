"""Cached reads of the catalogue, kept rendered (see config.http_cache), so a hit touches
neither the database nor a serializer; and the warmers that fill them ahead of demand."""

from typing import Any

from django.conf import settings
from django.core.paginator import EmptyPage, Paginator

from config.caching import CacheType, cache_get_or_set, cache_warmer
from config.http_cache import RenderedJSON, json_render
from products import selectors
from products.serializers import CategorySerializer, ProductDetailSerializer, ProductSerializer


class PageOutOfRange(LookupError):
    pass


class ProductNotFound(LookupError):
    pass


def products_page_cached(*, search: str, category: str, page: int, page_size: int) -> dict:
    """One page of the catalogue: {count, page, num_pages, results (rendered)}.

    Raises PageOutOfRange.
    """

    def compute() -> dict[str, Any]:
        paginator = Paginator(selectors.product_list(search=search, category=category), page_size)
        try:
            current = paginator.page(page)
        except EmptyPage:
            # Not cached: any page number can be asked for, only real pages take cache space.
            raise PageOutOfRange(page) from None
        return {
            "count": paginator.count,
            "page": page,
            "num_pages": paginator.num_pages,
            "results": json_render(ProductSerializer(current.object_list, many=True).data),
        }

    key = f"list:{category}:{page}:{page_size}:{search}"
    return cache_get_or_set(CacheType.PRODUCTS, key, compute)


def product_categories_cached() -> RenderedJSON:
    return cache_get_or_set(
        CacheType.PRODUCTS,
        "categories",
        lambda: json_render(CategorySerializer(selectors.product_categories(), many=True).data),
    )


def product_detail_cached(*, product_id: int) -> RenderedJSON:
    """A product with its metadata, as the detail endpoint shows it. Raises ProductNotFound."""

    def compute() -> RenderedJSON:
        product = selectors.product_get(product_id=product_id)
        if product is None:
            # Not cached, for the same reason as out-of-range pages.
            raise ProductNotFound(product_id)
        return json_render(ProductDetailSerializer(product).data)

    return cache_get_or_set(CacheType.PRODUCT_METADATA, f"detail:{product_id}", compute)


@cache_warmer(CacheType.PRODUCTS)
def products_warm() -> int:
    """The categories and the first page of the whole catalogue and of every category."""
    page_size = settings.REST_FRAMEWORK["PAGE_SIZE"]
    product_categories_cached()
    categories = [c["category"] for c in selectors.product_categories()]
    for category in ["", *categories]:
        products_page_cached(search="", category=category, page=1, page_size=page_size)
    return 2 + len(categories)


@cache_warmer(CacheType.PRODUCT_METADATA)
def product_metadata_warm(*, limit: int = 50) -> int:
    """The details of the most ranked and most viewed products."""
    top = [m.product_id for m in selectors.products_top_ranked(limit=limit)]
    viewed = [m.product_id for m in selectors.products_most_viewed(limit=limit)]
    product_ids = list(dict.fromkeys(top + viewed))
    for product_id in product_ids:
        product_detail_cached(product_id=product_id)
    return len(product_ids)
