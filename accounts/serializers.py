import zoneinfo
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import DAY_START_HOUR_MAX, User, UserSession, normalize_email
from accounts.selectors import user_day


class CanonicalEmailField(serializers.EmailField):
    """An address in its one canonical spelling (accounts.models.normalize_email)."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            return normalize_email(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error), code="invalid") from error


class EmailSerializer(serializers.Serializer):
    email = CanonicalEmailField(max_length=254)


class VerifySerializer(serializers.Serializer):
    email = CanonicalEmailField(max_length=254)
    # ASCII digits in a JSON string: a number would lose leading zeros, \d allows other scripts.
    code = serializers.RegexField(
        r"^[0-9]{6}$", max_length=6, error_messages={"invalid": "The code is 6 digits."}
    )

    def validate_code(self, value: str) -> str:
        if not isinstance(self.initial_data.get("code"), str):
            raise serializers.ValidationError("The code is a string of 6 digits.")
        return value


class PendingDaySerializer(serializers.Serializer):
    timezone = serializers.CharField()
    day_start_hour = serializers.IntegerField()
    effective_at = serializers.DateTimeField()


class UserSerializer(serializers.ModelSerializer):
    """The day rule shown is the one in force now; a change waits in `pending_day`."""

    timezone = serializers.SerializerMethodField()
    day_start_hour = serializers.SerializerMethodField()
    pending_day = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "display_name",
            "handle",
            "timezone",
            "day_start_hour",
            "pending_day",
            "points",
            "leaderboard_opt_out",
            "is_staff",
            "date_joined",
        ]
        read_only_fields = ["id", "email", "handle", "points", "is_staff", "date_joined"]

    def get_timezone(self, user: User) -> str:
        return user_day(user=user).rule.timezone

    def get_day_start_hour(self, user: User) -> int:
        return user_day(user=user).rule.day_start_hour

    @extend_schema_field(PendingDaySerializer(allow_null=True))
    def get_pending_day(self, user: User) -> dict | None:
        day = user_day(user=user)
        if day.pending_rule is None:
            return None
        return PendingDaySerializer(
            {
                "timezone": day.pending_rule.timezone,
                "day_start_hour": day.pending_rule.day_start_hour,
                "effective_at": day.pending_from,
            }
        ).data


class UserUpdateSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=50, allow_blank=True, required=False)
    timezone = serializers.CharField(max_length=64, required=False)
    day_start_hour = serializers.IntegerField(
        min_value=0, max_value=DAY_START_HOUR_MAX, required=False
    )
    leaderboard_opt_out = serializers.BooleanField(required=False)

    def validate_timezone(self, value: str) -> str:
        if value not in zoneinfo.available_timezones():
            raise serializers.ValidationError(f"{value!r} is not an IANA time zone name.")
        return value

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError(
                "Send at least one of display_name, timezone, day_start_hour, leaderboard_opt_out."
            )
        return attrs


class SignInSerializer(serializers.Serializer):
    user = UserSerializer()
    token = serializers.CharField()


class UserSessionSerializer(serializers.ModelSerializer):
    current = serializers.SerializerMethodField()

    class Meta:
        model = UserSession
        fields = ["id", "device", "ip_address", "created_at", "last_seen_at", "current"]

    def get_current(self, user_session: UserSession) -> bool:
        return user_session.pk == self.context.get("current_id")
