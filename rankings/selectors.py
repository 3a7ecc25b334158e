"""Reads of the rankings: a user's rankings and the community's Borda stats.

Each selector named in migrations/0002_performance_indexes.py runs the query its index serves.
"""

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, TypedDict

from django.db import connection
from django.db.models import Avg, Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from accounts.models import User
from config.db_router import replica_reads
from products.selectors import product_list
from rankings.models import MAX_RANKED_PRODUCTS, ProductRanking


class DayCategoryRankings(TypedDict):
    day: date
    category: str
    rankings: int


def rankings_for_user(*, user: User, category: str | None = None) -> QuerySet[ProductRanking]:
    """A user's ranking of a category (or of every category), in order (ranking_user_cat_pos)."""
    rankings = ProductRanking.objects.filter(user=user)
    if category is not None:
        rankings = rankings.filter(category=category)
    return rankings.select_related("product").order_by("category", "position")


def categories_ranked_count(*, user: User) -> int:
    """How many categories a user currently ranks (index ranking_user_cat_pos)."""
    return ProductRanking.objects.filter(user=user).values("category").distinct().count()


def categories_ranked_counts(*, user_ids: list[int]) -> dict[int, int]:
    """`categories_ranked_count` of a batch of users in one grouped query; 0 is left out."""
    return dict(
        ProductRanking.objects.filter(user_id__in=user_ids)
        .values("user_id")
        .annotate(categories=Count("category", distinct=True))
        .values_list("user_id", "categories")
    )


def _stats(*, rankers: int, score: int, first_places: int) -> dict[str, Any]:
    # Borda points are 11 - position, so the average position follows from the points total.
    average = (MAX_RANKED_PRODUCTS + 1) - score / rankers if rankers else None
    return {
        "score": score,
        "rankers": rankers,
        "average_position": round(average, 2) if average is not None else None,
        "first_place_votes": first_places,
    }


@replica_reads()
def ranking_stats_for_product(*, product_id: int) -> dict[str, Any]:
    """Rankers, Borda score, average position, first places of a product
    (index ranking_product_created)."""
    row = ProductRanking.objects.filter(product_id=product_id).aggregate(
        rankers=Count("position"),
        positions=Sum("position"),
        first_places=Count("position", filter=Q(position=1)),
    )
    rankers = row["rankers"]
    score = (MAX_RANKED_PRODUCTS + 1) * rankers - (row["positions"] or 0)
    return {
        "product_id": product_id,
        **_stats(rankers=rankers, score=score, first_places=row["first_places"]),
    }


def ranking_stats_for_products(*, product_ids: Iterable[int]) -> list[dict[str, Any]]:
    """`ranking_stats_for_product` of a few products in one query (ranking_product_pos).

    Every submission's `stats.updated` event reads this: written out, as the ORM spent several
    times longer building the statement than it runs.
    """
    ids = sorted(set(product_ids))
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT product_id, COUNT(*), SUM(position),"
            " SUM(CASE WHEN position = 1 THEN 1 ELSE 0 END)"
            f" FROM {ProductRanking._meta.db_table}"
            f" WHERE product_id IN ({', '.join(['%s'] * len(ids))}) GROUP BY product_id",
            ids,
        )
        rows = {product_id: counts for product_id, *counts in cursor.fetchall()}
    stats = []
    for product_id in ids:
        rankers, positions, first_places = rows.get(product_id, (0, 0, 0))
        score = (MAX_RANKED_PRODUCTS + 1) * rankers - positions
        stats.append(
            {
                "product_id": product_id,
                **_stats(rankers=rankers, score=score, first_places=first_places),
            }
        )
    return stats


@replica_reads()
def ranking_stats_for_category(*, category: str) -> list[dict[str, Any]]:
    """Products of a category by Borda score, best first (index ranking_cat_product)."""
    rows = (
        ProductRanking.objects.filter(category=category)
        .values("product_id")
        .annotate(
            score=Sum("points"),
            rankers=Count("points"),
            first_places=Count("points", filter=Q(points=MAX_RANKED_PRODUCTS)),
        )
        .order_by("-score", "product_id")
    )
    return [
        {
            "product_id": row["product_id"],
            **_stats(rankers=row["rankers"], score=row["score"], first_places=row["first_places"]),
        }
        for row in rows
    ]


def rankings_per_category_per_day(
    *, since: datetime, category: str | None = None
) -> list[DayCategoryRankings]:
    """Users whose current ranking of a category was submitted on each UTC day since a time
    (index ranking_created_cat, or ranking_cat_created for one category). A ranking replaced
    later counts on the day of its replacement.

    Every ranking has exactly one first place, so counting first places counts rankings without
    a DISTINCT over every ranked product.
    """
    rows = ProductRanking.objects.filter(created_at__gte=since, position=1)
    if category is not None:
        rows = rows.filter(category=category)
    return list(
        rows.annotate(day=TruncDate("created_at"))
        .values("day", "category")
        .annotate(rankings=Count("*"))
        .order_by("day", "category")
    )


def product_rank_movement(*, product_id: int, since: datetime) -> list[dict[str, Any]]:
    """A product's average position per UTC day in the rankings submitted that day, and how many
    users ranked it (index ranking_product_created)."""
    rows = (
        ProductRanking.objects.filter(product_id=product_id, created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(average=Avg("position"), rankers=Count("*"))
        .order_by("day")
    )
    return [
        {"day": row["day"], "average_position": round(row["average"], 2), "rankers": row["rankers"]}
        for row in rows
    ]


def category_stats(*, category: str) -> list[dict[str, Any]]:
    """Active products of a category by Borda score, with their names."""
    products = {p.pk: p for p in product_list(category=category)}
    return [
        {
            **row,
            "name": products[row["product_id"]].name,
            "slug": products[row["product_id"]].slug,
            "brand": products[row["product_id"]].brand,
        }
        for row in ranking_stats_for_category(category=category)
        if row["product_id"] in products
    ]
