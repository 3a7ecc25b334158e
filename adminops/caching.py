"""Employees' analytics: the apps' selectors over a bounded period, named and cached per type.

Each read is cached under its own type with its parameters in the key; a period is whole days
ending now, so a cached answer is at most its type's TTL behind.
"""

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone

from accounts.models import User
from config.caching import CacheType, cache_get_or_set, cache_warmer
from gamification import selectors as game
from products.selectors import (
    popular_searches,
    products_named,
    products_top_ranked,
    searches_without_results,
)
from rankings.selectors import product_rank_movement, rankings_per_category_per_day

MAX_DAYS = 365
MAX_LIMIT = 100
DEFAULT_DAYS = 30
DEFAULT_LIMIT = 10


def _since(days: int) -> datetime:
    return timezone.now() - timedelta(days=days)


def _earliest_today() -> date:
    """The earliest local date anywhere on Earth (UTC-12), so that no live streak is missed."""
    return (timezone.now() - timedelta(hours=12)).date()


def _named(rows: Sequence[Mapping[str, Any]], key: str = "product_id") -> list[dict[str, Any]]:
    products = products_named(product_ids=[row[key] for row in rows])
    return [
        {
            **row,
            "name": products[row[key]].name if row[key] in products else None,
            "category": products[row[key]].category if row[key] in products else None,
        }
        for row in rows
    ]


def analytics_searches(*, days: int, limit: int) -> dict[str, Any]:
    """The most searched queries and the queries that found nothing, over the last days."""

    def compute() -> dict[str, Any]:
        since = _since(days)
        return {
            "days": days,
            "popular": popular_searches(since=since, limit=limit),
            "without_results": searches_without_results(since=since, limit=limit),
        }

    return cache_get_or_set(CacheType.ANALYTICS_SEARCHES, f"{days}:{limit}", compute)


def analytics_views(*, days: int, limit: int, product_id: int | None) -> dict[str, Any]:
    """Views per day (of every page or of one product), the most viewed products and paths."""

    def compute() -> dict[str, Any]:
        since = _since(days)
        return {
            "days": days,
            "product_id": product_id,
            "per_day": game.page_views_per_day(since=since, product_id=product_id),
            "top_products": _named(game.products_viewed_most(since=since, limit=limit)),
            "top_paths": game.top_paths(since=since, limit=limit),
        }

    return cache_get_or_set(CacheType.ANALYTICS_VIEWS, f"{days}:{limit}:{product_id}", compute)


def analytics_active_users(*, days: int) -> dict[str, Any]:
    """Signed-in users who viewed a page, per day and per week."""

    def compute() -> dict[str, Any]:
        since = _since(days)
        return {
            "days": days,
            "per_day": game.active_users_per_day(since=since),
            "per_week": game.active_users_per_week(since=since),
        }

    return cache_get_or_set(CacheType.ANALYTICS_ACTIVE_USERS, str(days), compute)


def _streak_rows(streaks) -> list[dict[str, Any]]:
    return [
        {
            "user_id": streak.user_id,
            "display_name": streak.user.public_name,
            "current_length": streak.current_length,
            "longest_length": streak.longest_length,
            "last_active_date": streak.last_active_date,
        }
        for streak in streaks
    ]


def analytics_streaks(*, limit: int) -> dict[str, Any]:
    """The longest live streaks, the longest ever and the freezes live streaks hold."""

    def compute() -> dict[str, Any]:
        today = _earliest_today()
        return {
            "current": _streak_rows(game.top_streaks(today=today, limit=limit)),
            "longest": _streak_rows(game.streak_records(limit=limit)),
            "freezes_held": [
                {"freezes": freezes, "streaks": streaks}
                for freezes, streaks in sorted(game.streak_freezes_held(today=today).items())
            ],
        }

    return cache_get_or_set(CacheType.ANALYTICS_STREAKS, str(limit), compute)


def analytics_achievements(*, days: int) -> dict[str, Any]:
    """Per active achievement: the share of players who unlocked it, and its unlocks over the
    last days with the average time from joining to unlocking."""

    def compute() -> dict[str, Any]:
        players = User.objects.filter(is_active=True, is_staff=False).count()
        unlocked_by = game.achievement_unlock_counts()
        recent = game.achievement_unlocks_since(since=_since(days))
        return {
            "days": days,
            "players": players,
            "achievements": [
                {
                    "id": achievement.pk,
                    "code": achievement.code,
                    "name": achievement.name,
                    "unlocked_by": unlocked_by.get(achievement.pk, 0),
                    "unlock_rate": round(unlocked_by.get(achievement.pk, 0) / players, 4)
                    if players
                    else None,
                    "unlocks_in_period": recent.get(achievement.pk, {}).get("unlocks", 0),
                    "average_hours_to_unlock": recent.get(achievement.pk, {}).get(
                        "average_hours_to_unlock"
                    ),
                }
                for achievement in game.achievement_definitions()
            ],
        }

    return cache_get_or_set(CacheType.ANALYTICS_ACHIEVEMENTS, str(days), compute)


def analytics_rankings(*, days: int, category: str | None) -> dict[str, Any]:
    """Users whose current ranking of each category was submitted on each day."""

    def compute() -> dict[str, Any]:
        return {
            "days": days,
            "category": category,
            "per_day": rankings_per_category_per_day(since=_since(days), category=category),
        }

    return cache_get_or_set(CacheType.ANALYTICS_RANKINGS, f"{days}:{category}", compute)


def analytics_rank_movement(*, product_id: int, days: int) -> dict[str, Any]:
    """A product's average position per day in the rankings submitted that day."""

    def compute() -> dict[str, Any]:
        [product] = _named([{"product_id": product_id}])
        return {
            **product,
            "days": days,
            "per_day": product_rank_movement(product_id=product_id, since=_since(days)),
        }

    return cache_get_or_set(CacheType.ANALYTICS_RANK_MOVEMENT, f"{product_id}:{days}", compute)


@cache_warmer(CacheType.ANALYTICS_SEARCHES)
def warm_analytics_searches() -> int:
    analytics_searches(days=DEFAULT_DAYS, limit=DEFAULT_LIMIT)
    return 1


@cache_warmer(CacheType.ANALYTICS_VIEWS)
def warm_analytics_views() -> int:
    analytics_views(days=DEFAULT_DAYS, limit=DEFAULT_LIMIT, product_id=None)
    return 1


@cache_warmer(CacheType.ANALYTICS_ACTIVE_USERS)
def warm_analytics_active_users() -> int:
    analytics_active_users(days=DEFAULT_DAYS)
    return 1


@cache_warmer(CacheType.ANALYTICS_STREAKS)
def warm_analytics_streaks() -> int:
    analytics_streaks(limit=DEFAULT_LIMIT)
    return 1


@cache_warmer(CacheType.ANALYTICS_ACHIEVEMENTS)
def warm_analytics_achievements() -> int:
    analytics_achievements(days=DEFAULT_DAYS)
    return 1


@cache_warmer(CacheType.ANALYTICS_RANKINGS)
def warm_analytics_rankings() -> int:
    analytics_rankings(days=DEFAULT_DAYS, category=None)
    return 1


@cache_warmer(CacheType.ANALYTICS_RANK_MOVEMENT)
def warm_analytics_rank_movement() -> int:
    """The movement of the most ranked products, the ones employees look at first."""
    top = [meta.product_id for meta in products_top_ranked(limit=5)]
    for product_id in top:
        analytics_rank_movement(product_id=product_id, days=DEFAULT_DAYS)
    return len(top)
