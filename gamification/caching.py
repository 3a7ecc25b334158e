"""Cached reads of the game, kept rendered (see config.http_cache): a hit touches neither the
database nor a serializer. Each may be stale up to its type's TTL."""

from django.utils import timezone

from accounts.models import User
from config.caching import CacheType, cache_get_or_set, cache_warmer
from config.http_cache import RenderedJSON, json_render
from gamification import selectors
from gamification.selectors import LEADERBOARD_DEFAULT_LIMIT, LEADERBOARD_MAX, WINDOWS, Window
from gamification.serializers import (
    AchievementDefinitionSerializer,
    HomeStatsSerializer,
    LeaderboardSerializer,
    PositionSerializer,
)


def leaderboard_cached(*, window: Window, limit: int) -> RenderedJSON:
    """The board cut to `limit`. The top 100 is computed once per TTL, so every limit shows
    the same board."""

    def top() -> dict:
        return {
            "window": window,
            "generated_at": timezone.now(),
            "entries": selectors.leaderboard(window=window, limit=LEADERBOARD_MAX),
        }

    def cut() -> RenderedJSON:
        board = cache_get_or_set(CacheType.LEADERBOARD, window, top)
        return json_render(
            LeaderboardSerializer({**board, "entries": board["entries"][:limit]}).data
        )

    return cache_get_or_set(CacheType.LEADERBOARD, f"{window}:{limit}", cut)


def leaderboard_position_cached(*, user: User, window: Window) -> RenderedJSON:
    """Dropped for a user whenever their points change (gamification.services)."""
    return cache_get_or_set(
        CacheType.LEADERBOARD_POSITION,
        f"{window}:{user.pk}",
        lambda: json_render(
            PositionSerializer(selectors.leaderboard_position(user=user, window=window)).data
        ),
    )


def home_stats_cached() -> RenderedJSON:
    return cache_get_or_set(
        CacheType.HOME_STATS,
        "home",
        lambda: json_render(HomeStatsSerializer(selectors.home_stats()).data),
    )


def achievements_public_cached() -> RenderedJSON:
    """The achievements as a signed-out visitor sees them: every hidden one masked."""
    return cache_get_or_set(
        CacheType.ACHIEVEMENT_DEFINITIONS,
        "public",
        lambda: json_render(
            AchievementDefinitionSerializer(
                selectors.achievements_for_viewer(user=None), many=True
            ).data
        ),
    )


@cache_warmer(CacheType.LEADERBOARD)
def leaderboard_warm() -> int:
    for window in WINDOWS:
        leaderboard_cached(window=window, limit=LEADERBOARD_DEFAULT_LIMIT)
    return len(WINDOWS)


@cache_warmer(CacheType.LEADERBOARD_POSITION)
def leaderboard_position_warm() -> int:
    """Positions of the users on the visible board: the ones most likely to look."""
    users = list(selectors.ranked_users().order_by("-points", "id")[:LEADERBOARD_MAX])
    for user in users:
        leaderboard_position_cached(user=user, window="all")
    return len(users)


@cache_warmer(CacheType.HOME_STATS)
def home_stats_warm() -> int:
    home_stats_cached()
    return 1


@cache_warmer(CacheType.ACHIEVEMENT_DEFINITIONS)
def achievements_warm() -> int:
    """The definitions, and the list signed-out visitors get (built from them)."""
    selectors.achievement_definitions_cached()
    achievements_public_cached()
    return 2
