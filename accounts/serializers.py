import zoneinfo
from typing import Any

from rest_framework import serializers

from accounts.models import User, UserSession, normalize_email


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


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "display_name",
            "handle",
            "timezone",
            "points",
            "leaderboard_opt_out",
            "is_staff",
            "date_joined",
        ]
        read_only_fields = ["id", "email", "handle", "points", "is_staff", "date_joined"]


class UserUpdateSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=50, allow_blank=True, required=False)
    timezone = serializers.CharField(max_length=64, required=False)
    leaderboard_opt_out = serializers.BooleanField(required=False)

    def validate_timezone(self, value: str) -> str:
        if value not in zoneinfo.available_timezones():
            raise serializers.ValidationError(f"{value!r} is not an IANA time zone name.")
        return value

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError(
                "Send at least one of display_name, timezone, leaderboard_opt_out."
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
