from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from gamification.boards import WINDOWS
from gamification.models import ActivityLog, Streak, UserAchievement
from gamification.selectors import (
    AROUND_DEFAULT,
    AROUND_MAX,
    LEADERBOARD_DEFAULT_LIMIT,
    LEADERBOARD_MAX,
    leaderboard_windows,
    levels_reached,
)


class StreakSerializer(serializers.ModelSerializer):
    class Meta:
        model = Streak
        fields = ["current_length", "longest_length", "last_active_date", "freezes_left"]


class AchievementUnlockSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    icon = serializers.CharField()
    points = serializers.IntegerField()


class NewAchievementSerializer(AchievementUnlockSerializer):
    """One level reached (gamification.services.Unlock): `points` are the level's."""

    level = serializers.IntegerField(source="level.number")
    level_name = serializers.CharField(source="level.name")


class LevelSerializer(serializers.Serializer):
    name = serializers.CharField()
    threshold = serializers.IntegerField()
    points = serializers.IntegerField()


class AchievementDefinitionSerializer(serializers.Serializer):
    """A hidden achievement the viewer has not unlocked shows as a placeholder: every field
    that could identify it is null."""

    id = serializers.IntegerField(allow_null=True)
    code = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    description = serializers.CharField()
    icon = serializers.CharField()
    points = serializers.IntegerField(allow_null=True)
    metric = serializers.CharField(allow_null=True)
    threshold = serializers.IntegerField(allow_null=True)
    levels = LevelSerializer(many=True, allow_null=True)
    is_hidden = serializers.BooleanField()
    unlocked_by = serializers.IntegerField(allow_null=True)
    unlocked = serializers.BooleanField()


class UserAchievementSerializer(serializers.ModelSerializer):
    """`progress` counts towards `threshold`, the next level's (the last one's once all are
    reached); `next_level` is null then."""

    achievement = AchievementUnlockSerializer()
    level = serializers.SerializerMethodField()
    levels = serializers.SerializerMethodField()
    threshold = serializers.SerializerMethodField()
    next_level = serializers.SerializerMethodField()

    class Meta:
        model = UserAchievement
        fields = [
            "achievement",
            "progress",
            "threshold",
            "level",
            "levels",
            "next_level",
            "unlocked_at",
        ]

    def get_level(self, held: UserAchievement) -> int:
        return levels_reached(level=held.level, unlocked_at=held.unlocked_at)

    def get_levels(self, held: UserAchievement) -> int:
        return len(held.achievement.tiers)

    def get_threshold(self, held: UserAchievement) -> int:
        tiers = held.achievement.tiers
        return tiers[min(self.get_level(held), len(tiers) - 1)].threshold

    @extend_schema_field(LevelSerializer(allow_null=True))
    def get_next_level(self, held: UserAchievement) -> dict | None:
        tiers, level = held.achievement.tiers, self.get_level(held)
        if level >= len(tiers):
            return None
        return LevelSerializer(tiers[level]).data


class MyAchievementsSerializer(serializers.Serializer):
    unlocked = UserAchievementSerializer(many=True)
    in_progress = UserAchievementSerializer(many=True)
    hidden_locked = serializers.IntegerField(help_text="Hidden achievements still to find.")


class ActivitySerializer(serializers.ModelSerializer):
    class Meta:
        model = ActivityLog
        fields = ["id", "kind", "points", "local_date", "data", "reason", "created_at"]


class WindowField(serializers.ChoiceField):
    """One of the windows this deployment keeps (setting LEADERBOARD_WINDOWS)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(choices=WINDOWS, default="all", **kwargs)

    def to_internal_value(self, data):
        window = super().to_internal_value(data)
        if window not in leaderboard_windows():
            self.fail("invalid_choice", input=data)
        return window


class LeaderboardQuerySerializer(serializers.Serializer):
    window = WindowField()
    offset = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
    limit = serializers.IntegerField(
        min_value=1, max_value=LEADERBOARD_MAX, default=LEADERBOARD_DEFAULT_LIMIT
    )


class PositionQuerySerializer(serializers.Serializer):
    window = WindowField()
    around = serializers.IntegerField(min_value=0, max_value=AROUND_MAX, default=AROUND_DEFAULT)


class LeaderboardEntrySerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    user_id = serializers.IntegerField()
    display_name = serializers.CharField()
    points = serializers.IntegerField()


# Answered by a viewset's `list` action, yet one object, not a list of them.
@extend_schema_serializer(many=False)
class LeaderboardSerializer(serializers.Serializer):
    window = serializers.CharField()
    period_start = serializers.DateTimeField(allow_null=True)
    generated_at = serializers.DateTimeField()
    offset = serializers.IntegerField()
    total = serializers.IntegerField()
    entries = LeaderboardEntrySerializer(many=True)


class PositionSerializer(serializers.Serializer):
    window = serializers.CharField()
    rank = serializers.IntegerField(allow_null=True)
    points = serializers.IntegerField()
    total = serializers.IntegerField()
    percentile = serializers.FloatField(
        allow_null=True, help_text="Share of the board's players at or below this score, in %."
    )
    around = LeaderboardEntrySerializer(many=True)


class TopProductSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    category = serializers.CharField()
    ranking_count = serializers.IntegerField()


# Answered by a viewset's `list` action, yet one object, not a list of them.
@extend_schema_serializer(many=False)
class HomeStatsSerializer(serializers.Serializer):
    users = serializers.IntegerField()
    products = serializers.IntegerField()
    rankings_today = serializers.IntegerField()
    active_streaks = serializers.IntegerField()
    achievements_unlocked_today = serializers.IntegerField()
    users_online = serializers.IntegerField()
    top_products = TopProductSerializer(many=True)
    generated_at = serializers.DateTimeField()


class PageViewSerializer(serializers.Serializer):
    path = serializers.RegexField(
        r"^/[^\s]*$",
        max_length=500,
        error_messages={"invalid": "path must be a site path starting with /."},
    )
    product_id = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, required=False, allow_null=True
    )
    referrer = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
