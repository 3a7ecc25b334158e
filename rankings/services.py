"""Writes of the rankings: a user submits their ranking of one category."""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from accounts.models import User
from gamification.models import Streak
from gamification.services import Unlock, submission_reward
from products.models import Product
from products.services import product_ranking_counts_reset, product_ranking_counts_update
from rankings.models import MAX_RANKED_PRODUCTS, ProductRanking, borda_points
from rankings.selectors import ranking_stats_for_products
from realtime.events import LIVE_GROUP, event_send, events_batched


class InvalidRanking(ValueError):
    """The submitted list cannot be a ranking; the message says why."""


@dataclass
class RankingResult:
    rankings: list[ProductRanking]
    points_awarded: int
    streak: Streak
    new_achievements: list[Unlock]


def ranking_validate(*, category: str, product_ids: list[int]) -> list[Product]:
    """The products of a valid ranking in order, or InvalidRanking with a clear reason."""
    if not category:
        raise InvalidRanking("category is required.")
    if not product_ids:
        raise InvalidRanking("Rank at least one product.")
    if len(product_ids) > MAX_RANKED_PRODUCTS:
        raise InvalidRanking(f"Rank at most {MAX_RANKED_PRODUCTS} products.")
    duplicates = sorted({pk for pk in product_ids if product_ids.count(pk) > 1})
    if duplicates:
        raise InvalidRanking(f"Each product can be ranked once; repeated: {duplicates}.")
    products = {p.pk: p for p in Product.objects.filter(pk__in=product_ids, is_active=True)}
    unknown = [pk for pk in product_ids if pk not in products]
    if unknown:
        raise InvalidRanking(f"Unknown or inactive products: {unknown}.")
    foreign = [pk for pk in product_ids if products[pk].category != category]
    if foreign:
        raise InvalidRanking(f"Products not in category {category!r}: {foreign}.")
    return [products[pk] for pk in product_ids]


def ranking_submit(
    *, user: User, category: str, product_ids: list[int], now: datetime | None = None
) -> RankingResult:
    """Replace the user's ranking of a category and reward it, in one transaction."""
    products = ranking_validate(category=category, product_ids=product_ids)
    now = now or timezone.now()
    # About six events: delivered together once the commit is done.
    with events_batched(), transaction.atomic():
        # Concurrent submissions by one user run one after the other from here on.
        user = User.objects.select_for_update().get(pk=user.pk)
        # The rankings this submission replaces go, the others stay: a product that moved
        # category since it was ranked still holds its (user, product) row.
        held = list(ProductRanking.objects.filter(user=user).values_list("product_id", "category"))
        previous_ids = {p for p, in_category in held if in_category == category or p in product_ids}
        ProductRanking.objects.filter(user=user, product_id__in=previous_ids).delete()
        categories = {in_category for p, in_category in held if p not in previous_ids} | {category}
        rankings = ProductRanking.objects.bulk_create(
            ProductRanking(
                user=user,
                product=product,
                category=category,
                position=position,
                points=borda_points(position),
                created_at=now,
                updated_at=now,
            )
            for position, product in enumerate(products, start=1)
        )
        reward = submission_reward(
            user=user,
            category=category,
            product_ids=product_ids,
            categories_ranked=len(categories),
            now=now,
        )
        # The feed is public: a user who opted out of the leaderboard is not shown there either.
        if not user.leaderboard_opt_out:
            event_send(
                group=LIVE_GROUP,
                event_type="ranking.submitted",
                data={
                    "display_name": user.public_name,
                    "category": category,
                    "product_ids": product_ids,
                },
            )
        changed = set(product_ids) | previous_ids
        event_send(
            group=LIVE_GROUP,
            event_type="stats.updated",
            data=lambda: {
                "category": category,
                "products": ranking_stats_for_products(product_ids=changed),
            },
        )
        # Last: other users' submissions wait on these rows' locks until this one commits.
        product_ranking_counts_update(
            added=set(product_ids) - previous_ids, removed=previous_ids - set(product_ids)
        )
    return RankingResult(
        rankings=rankings,
        points_awarded=reward.points_awarded,
        streak=reward.streak,
        new_achievements=reward.new_achievements,
    )


def ranking_stats_rebuild() -> dict[str, int]:
    """Recount how many users rank each product from the rankings themselves. Idempotent."""

    def count() -> dict[int, int]:
        rows = ProductRanking.objects.values("product_id").annotate(rankers=Count("id"))
        return {row["product_id"]: row["rankers"] for row in rows}

    return {"counts_fixed": product_ranking_counts_reset(count=count)}
