"""Reads of the rankings: a user's rankings and the community's Borda stats.

Each selector named in migrations/0002_performance_indexes.py runs the query its index serves.
"""

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from accounts.models import User
from config.db_router import replica_reads
from products.selectors import product_list
from rankings.models import MAX_RANKED_PRODUCTS, ProductRanking


def rankings_for_user(*, user: User, category: str | None = None) -> QuerySet[ProductRanking]:
    """A user's ranking of a category (or of every category), in order (ranking_user_cat_pos)."""
    rankings = ProductRanking.objects.filter(user=user)
    if category is not None:
        rankings = rankings.filter(category=category)
    return rankings.select_related("product").order_by("category", "position")


def categories_ranked_count(*, user: User) -> int:
    """How many categories a user currently ranks (index ranking_user_cat_pos)."""
    return ProductRanking.objects.filter(user=user).values("category").distinct().count()


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
    """Rankers, Borda score, average position, first places of a product (ranking_product_pos)."""
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
    """`ranking_stats_for_product` of a few products in one query (ranking_product_pos)."""
    ids = sorted(set(product_ids))
    rows = {
        row["product_id"]: row
        for row in ProductRanking.objects.filter(product_id__in=ids)
        .values("product_id")
        .annotate(
            rankers=Count("position"),
            positions=Sum("position"),
            first_places=Count("position", filter=Q(position=1)),
        )
    }
    stats = []
    for product_id in ids:
        row = rows.get(product_id, {"rankers": 0, "positions": 0, "first_places": 0})
        score = (MAX_RANKED_PRODUCTS + 1) * row["rankers"] - (row["positions"] or 0)
        stats.append(
            {
                "product_id": product_id,
                **_stats(rankers=row["rankers"], score=score, first_places=row["first_places"]),
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


def recent_rankings(*, limit: int = 20) -> QuerySet[ProductRanking]:
    """The latest rankings across the community (index ranking_updated)."""
    return ProductRanking.objects.select_related("product", "user").order_by("-updated_at")[:limit]


def recent_rankings_for_user(*, user: User, limit: int = 20) -> QuerySet[ProductRanking]:
    """A user's most recently updated rankings (index ranking_user_updated)."""
    return (
        ProductRanking.objects.filter(user=user)
        .select_related("product")
        .order_by("-updated_at")[:limit]
    )


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
