"""Cached reads of the game, kept rendered (see config.http_cache): a hit touches neither the
database nor a serializer. Each may be stale up to its type's TTL; the leaderboards' are
dropped at once when a user joins or leaves the boards."""

from datetime import UTC

from django.utils import timezone

from accounts.models import User
from config.caching import CacheType, cache_get_or_set, cache_warmer
from config.http_cache import RenderedJSON, json_render
from gamification import selectors, services
from gamification.boards import Window, period_of
from gamification.selectors import AROUND_DEFAULT, LEADERBOARD_DEFAULT_LIMIT, LEADERBOARD_MAX
from gamification.serializers import (
    AchievementDefinitionSerializer,
    HomeStatsSerializer,
    LeaderboardSerializer,
    PositionSerializer,
)


def leaderboard_cached(*, window: Window, offset: int, limit: int) -> RenderedJSON:
    """A page of the current board of a window; reading SQL because Redis lost the board
    queues its rebuild."""

    def page() -> RenderedJSON:
        board = selectors.leaderboard_page(window=window, offset=offset, limit=limit)
        if board["source"] == "sql":
            services.leaderboard_rebuild_request(window=window)
        return json_render(LeaderboardSerializer(board).data)

    period = period_of(window=window, at=timezone.now())
    return cache_get_or_set(CacheType.LEADERBOARD, f"{period.label}:{offset}:{limit}", page)


def leaderboard_day() -> str:
    """The current UTC day: every window's periods start at a UTC midnight, so the day names
    the current board of them all (a stored leaderboard answer is kept per day). Asked on every
    cached leaderboard read, so written out rather than built from the day's period."""
    return timezone.now().astimezone(UTC).date().isoformat()


def leaderboard_position_cached(*, user: User, window: Window, around: int) -> RenderedJSON:
    """Keyed by the user's own points: a user who scores reads a fresh position at once."""

    def position() -> RenderedJSON:
        found = selectors.leaderboard_position(user=user, window=window, around=around)
        if found["source"] == "sql":
            services.leaderboard_rebuild_request(window=window)
        return json_render(PositionSerializer(found).data)

    period = period_of(window=window, at=timezone.now())
    reached = user.points_reached_at.timestamp()
    return cache_get_or_set(
        CacheType.LEADERBOARD_POSITION,
        f"{period.label}:{user.pk}:{user.points}:{reached}:{around}",
        position,
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
    windows = selectors.leaderboard_windows()
    for window in windows:
        leaderboard_cached(window=window, offset=0, limit=LEADERBOARD_DEFAULT_LIMIT)
    return len(windows)


@cache_warmer(CacheType.LEADERBOARD_POSITION)
def leaderboard_position_warm() -> int:
    """Positions of the users on the visible board: the ones most likely to look."""
    users = list(
        selectors.ranked_users()
        .filter(points__gt=0)
        .order_by(*selectors.BOARD_ORDER)[:LEADERBOARD_MAX]
    )
    for window in selectors.leaderboard_windows()[:1]:
        for user in users:
            leaderboard_position_cached(user=user, window=window, around=AROUND_DEFAULT)
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
