from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from gamification.boards import WINDOWS
from gamification.models import ActivityLog, Streak, UserAchievement
from gamification.selectors import (
    AROUND_DEFAULT,
    AROUND_MAX,
    LEADERBOARD_DEFAULT_LIMIT,
    LEADERBOARD_MAX,
    leaderboard_windows,
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


class AchievementDefinitionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    icon = serializers.CharField()
    points = serializers.IntegerField()
    metric = serializers.CharField(allow_null=True)
    threshold = serializers.IntegerField(allow_null=True)
    is_hidden = serializers.BooleanField()
    unlocked_by = serializers.IntegerField()
    unlocked = serializers.BooleanField()


class UserAchievementSerializer(serializers.ModelSerializer):
    achievement = AchievementUnlockSerializer()
    threshold = serializers.IntegerField(source="achievement.threshold")

    class Meta:
        model = UserAchievement
        fields = ["achievement", "progress", "threshold", "unlocked_at"]


class MyAchievementsSerializer(serializers.Serializer):
    unlocked = UserAchievementSerializer(many=True)
    in_progress = UserAchievementSerializer(many=True)


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
