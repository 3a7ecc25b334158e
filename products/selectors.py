"""Reads of the catalogue."""

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, DateTimeField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import TruncDate

from config.db_router import replica_reads
from config.rollups import (
    DAY,
    counts_top,
    day_start,
    month_of,
    period_split_by_months,
    today_utc,
)
from products.models import (
    Product,
    ProductMetadata,
    SearchDay,
    SearchMonth,
    SearchQueryDay,
    SearchQueryMonth,
    UserProductSearch,
)


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
            # Each user's searches through the index (search_user_created): a join of the
            # batch would hash the whole table.
            cursor.execute(
                f"""
                SELECT r.user_id, c.days
                FROM unnest(%s::bigint[], %s::text[], %s::integer[])
                    AS r(user_id, zone, day_start_hour)
                CROSS JOIN LATERAL (
                    SELECT COUNT(DISTINCT (s.query, ((s.created_at
                        - make_interval(hours => r.day_start_hour)) AT TIME ZONE r.zone)::date))
                        AS days
                    FROM {searches} AS s WHERE s.user_id = r.user_id
                ) AS c
                WHERE c.days > 0
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


class QueryDay(TypedDict):
    query: str
    searches: int
    without_results: int


def searches_of_day(*, day: date) -> list[QueryDay]:
    """A UTC day's searches per query from the raw rows (index search_created_query)."""
    start = day_start(day)
    return list(
        UserProductSearch.objects.filter(created_at__gte=start, created_at__lt=start + DAY)
        .values("query")
        .annotate(searches=Count("*"), without_results=Count("id", filter=Q(result_count=0)))
        .order_by("query")
    )


def searches_of_days(*, first: date, before: date) -> list[QueryDay]:
    """SearchQueryDay summed per query from `first` to before `before`."""
    return list(
        SearchQueryDay.objects.filter(day__gte=first, day__lt=before)
        .values("query")
        .annotate(searches=Sum("searches"), without_results=Sum("without_results"))
        .order_by("query")
    )


def searches_rolled_days_in(*, first: date, last: date) -> int:
    """How many days from `first` to `last` are rolled up."""
    return SearchDay.objects.filter(day__range=(first, last)).count()


def searches_rolled_last() -> date | None:
    """The latest day rolled up into SearchQueryDay, or None before the first roll-up."""
    return SearchDay.objects.order_by("-day").values_list("day", flat=True).first()


def _query_counts(*, since: datetime, limit: int, without_results: bool) -> list[QuerySearches]:
    """The most searched queries: closed months from SearchQueryMonth, other closed days from
    SearchQueryDay, the rest (today, a partial first day, any day not rolled yet) raw."""
    months, days = period_split_by_months(
        since=since,
        rolled_months=set(
            SearchMonth.objects.filter(month__gte=month_of(today_utc(since))).values_list(
                "month", flat=True
            )
        ),
        rolled_days=set(
            SearchDay.objects.filter(day__gte=today_utc(since)).values_list("day", flat=True)
        ),
    )
    raw = UserProductSearch.objects.filter(days.raw_q())
    if without_results:
        raw = raw.filter(result_count=0)
    parts: list[QuerySet[Any, Any]] = [raw.values("query").annotate(n=Count("*"))]
    column = "without_results" if without_results else "searches"
    for split, rollup, field_name in (
        (days, SearchQueryDay, "day"),
        (months, SearchQueryMonth, "month"),
    ):
        rolled_q = split.rolled_q(field_name)
        if rolled_q is None:
            continue
        rolled = rollup.objects.filter(rolled_q)
        if without_results:
            rolled = rolled.filter(without_results__gt=0)
        parts.append(rolled.values("query").annotate(n=Sum(column)))
    return [
        {"query": row["query"], "searches": row["n"]}
        for row in counts_top(parts=parts, key="query", limit=limit)
    ]


@replica_reads()
def popular_searches(*, since: datetime, limit: int = 10) -> list[QuerySearches]:
    """The most searched queries since a time (SearchQueryDay's closed days; the raw rows by an
    index-only scan of search_created_query)."""
    return _query_counts(since=since, limit=limit, without_results=False)


def searches_without_results(*, since: datetime, limit: int = 10) -> list[QuerySearches]:
    """The queries that found nothing since a time, most searched first (SearchQueryDay's closed
    days; the raw rows by search_zero_created)."""
    return _query_counts(since=since, limit=limit, without_results=True)


def products_named(*, product_ids: Iterable[int]) -> dict[int, Product]:
    """Products by id, active or not, for reports that name the products they count."""
    return Product.objects.in_bulk(list(product_ids))


def product_delete_blocker(*, product: Product) -> str | None:
    """Why a product must not be deleted (users rank it), or None."""
    if product.rankings.exists():
        return "Users rank this product; set is_active to false instead of deleting it."
    return None
