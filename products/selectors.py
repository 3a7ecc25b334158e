"""Reads of the catalogue."""

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import TypedDict
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, DateTimeField, ExpressionWrapper, F, Q, QuerySet
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import TruncDate

from config.db_router import replica_reads
from products.models import Product, ProductMetadata, UserProductSearch


class CategoryCount(TypedDict):
    category: str
    product_count: int


class QuerySearches(TypedDict):
    query: str
    searches: int


def normalize_query(query: str) -> str:
    """Searches are recorded and compared case- and space-insensitively."""
    return " ".join(query.lower().split())


def product_list(*, search: str = "", category: str = "") -> QuerySet[Product]:
    """Active products matching a search in name, brand or category, optionally of a category."""
    products = Product.objects.filter(is_active=True).select_related("metadata")
    if category:
        products = products.filter(category=category)
    search = normalize_query(search)
    if search:
        products = products.filter(
            Q(name__icontains=search) | Q(brand__icontains=search) | Q(category__icontains=search)
        )
    return products.order_by("name", "id")


def product_get(*, product_id: int) -> Product | None:
    return Product.objects.select_related("metadata").filter(pk=product_id, is_active=True).first()


def product_categories() -> list[CategoryCount]:
    """Categories of active products with how many products each has, by name."""
    return list(
        Product.objects.filter(is_active=True)
        .values("category")
        .annotate(product_count=Count("id"))
        .order_by("category")
    )


def products_top_ranked(*, limit: int = 10) -> QuerySet[ProductMetadata]:
    """The most ranked active products (index pmeta_ranking_count)."""
    return (
        ProductMetadata.objects.select_related("product")
        .filter(product__is_active=True, ranking_count__gt=0)
        .order_by("-ranking_count", "product_id")[:limit]
    )


def products_most_viewed(*, limit: int = 10) -> QuerySet[ProductMetadata]:
    """The most viewed active products (index pmeta_view_count)."""
    return (
        ProductMetadata.objects.select_related("product")
        .filter(product__is_active=True, view_count__gt=0)
        .order_by("-view_count", "product_id")[:limit]
    )


def searches_for_user(*, user_id: int) -> QuerySet[UserProductSearch]:
    """A user's searches, newest first (index search_user_created)."""
    return UserProductSearch.objects.filter(user_id=user_id).order_by("-created_at")


def searches_daily_distinct_count(*, user_id: int, zone: tzinfo, day_start_hour: int) -> int:
    """The searches-made metric: each query counts once per day of the user's (in `zone`,
    days starting at `day_start_hour`), however often it is searched that day."""
    moment: F | ExpressionWrapper[CombinedExpression] = F("created_at")
    if day_start_hour:
        moment = ExpressionWrapper(
            F("created_at") - timedelta(hours=day_start_hour), output_field=DateTimeField()
        )
    return (
        UserProductSearch.objects.filter(user_id=user_id)
        .annotate(day=TruncDate(moment, tzinfo=zone))
        .values("query", "day")
        .distinct()
        .count()
    )


def searches_daily_distinct_counts(*, rules: Mapping[int, tuple[ZoneInfo, int]]) -> dict[int, int]:
    """`searches_daily_distinct_count` of a batch of users in one query, each user's day by
    their (zone, day start hour) in `rules`; users without searches are left out.

    Day for day as the single count reckons it: the moment less the start hour, in the zone.
    """
    if not rules:
        return {}
    searches = UserProductSearch._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT r.user_id, COUNT(DISTINCT (s.query, ((s.created_at
                    - make_interval(hours => r.day_start_hour)) AT TIME ZONE r.zone)::date))
                FROM unnest(%s::bigint[], %s::text[], %s::integer[])
                    AS r(user_id, zone, day_start_hour)
                JOIN {searches} AS s ON s.user_id = r.user_id
                GROUP BY r.user_id
                """,
                [
                    list(rules),
                    [zone.key for zone, _ in rules.values()],
                    [hour for _, hour in rules.values()],
                ],
            )
            return dict(cursor.fetchall())
    # SQLite has no time zones of its own: the batch's searches are read and counted here.
    days: dict[int, set[tuple[str, object]]] = {}
    for user_id, query, created_at in UserProductSearch.objects.filter(
        user_id__in=list(rules)
    ).values_list("user_id", "query", "created_at"):
        zone, hour = rules[user_id]
        day = (created_at - timedelta(hours=hour)).astimezone(zone).date()
        days.setdefault(user_id, set()).add((query, day))
    return {user_id: len(pairs) for user_id, pairs in days.items()}


@replica_reads()
def popular_searches(*, since: datetime, limit: int = 10) -> list[QuerySearches]:
    """The most searched queries since a time (index-only scan of search_created_query)."""
    return list(
        UserProductSearch.objects.filter(created_at__gte=since)
        .values("query")
        .annotate(searches=Count("*"))
        .order_by("-searches", "query")[:limit]
    )


def searches_without_results(*, since: datetime, limit: int = 10) -> list[QuerySearches]:
    """The queries that found nothing since a time, most searched first (search_zero_created)."""
    return list(
        UserProductSearch.objects.filter(created_at__gte=since, result_count=0)
        .values("query")
        .annotate(searches=Count("*"))
        .order_by("-searches", "query")[:limit]
    )


def products_named(*, product_ids: Iterable[int]) -> dict[int, Product]:
    """Products by id, active or not, for reports that name the products they count."""
    return Product.objects.in_bulk(list(product_ids))


def product_delete_blocker(*, product: Product) -> str | None:
    """Why a product must not be deleted (users rank it), or None."""
    if product.rankings.exists():
        return "Users rank this product; set is_active to false instead of deleting it."
    return None
