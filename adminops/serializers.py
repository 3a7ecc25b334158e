from rest_framework import serializers

from adminops.caching import DEFAULT_DAYS, DEFAULT_LIMIT, MAX_DAYS, MAX_LIMIT
from adminops.models import AuditLog, Job
from config.caching import CacheType
from gamification.models import Achievement
from products.models import Product, ProductMetadata


class AdminProductMetadataSerializer(serializers.ModelSerializer):
    tags = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, max_length=50
    )
    attributes = serializers.DictField(required=False)

    class Meta:
        model = ProductMetadata
        fields = ["description", "attributes", "tags", "view_count", "ranking_count", "updated_at"]
        read_only_fields = ["view_count", "ranking_count", "updated_at"]


class AdminProductSerializer(serializers.ModelSerializer):
    metadata = AdminProductMetadataSerializer(required=False)

    class Meta:
        model = Product
        fields = [
            "id",
            "name",
            "slug",
            "brand",
            "category",
            "image_url",
            "is_active",
            "created_at",
            "updated_at",
            "metadata",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class AdminAchievementSerializer(serializers.ModelSerializer):
    class Meta:
        model = Achievement
        fields = [
            "id",
            "code",
            "name",
            "description",
            "icon",
            "points",
            "metric",
            "threshold",
            "levels",
            "is_hidden",
            "is_active",
            "order",
        ]
        read_only_fields = ["id"]


class ReasonField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=300, trim_whitespace=True, **kwargs)


class PointsAdjustSerializer(serializers.Serializer):
    points = serializers.IntegerField(min_value=-1_000_000, max_value=1_000_000)
    reason = ReasonField()

    def validate_points(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("An adjustment of 0 points changes nothing.")
        return value


class LeaderboardExclusionSerializer(serializers.Serializer):
    excluded = serializers.BooleanField()
    reason = ReasonField(required=False, allow_blank=True, default="")


class StreakRepairSerializer(serializers.Serializer):
    current_length = serializers.IntegerField(min_value=0, max_value=100_000)
    longest_length = serializers.IntegerField(min_value=0, max_value=100_000)
    reason = ReasonField()

    def validate(self, attrs: dict) -> dict:
        if attrs["longest_length"] < attrs["current_length"]:
            raise serializers.ValidationError(
                {"longest_length": "Cannot be shorter than current_length."}
            )
        return attrs


class AdminUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    display_name = serializers.CharField()
    points = serializers.IntegerField()
    is_staff = serializers.BooleanField()
    leaderboard_opt_out = serializers.BooleanField()
    leaderboard_excluded = serializers.BooleanField()


class StreakStateSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    current_length = serializers.IntegerField()
    longest_length = serializers.IntegerField()
    last_active_date = serializers.DateField(allow_null=True)


class CacheStatsSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=[t.value for t in CacheType])
    hits = serializers.IntegerField()
    misses = serializers.IntegerField()
    hit_rate = serializers.FloatField(allow_null=True)


class AuditLogSerializer(serializers.ModelSerializer):
    actor_email = serializers.EmailField(source="actor.email", default=None)

    class Meta:
        model = AuditLog
        fields = [
            "id",
            "actor",
            "actor_email",
            "action",
            "target_type",
            "target_id",
            "reason",
            "data",
            "created_at",
        ]


class ProductImportSerializer(serializers.Serializer):
    """The CSV as an uploaded file (multipart) or as text (JSON)."""

    file = serializers.FileField(required=False, max_length=200)
    csv = serializers.CharField(required=False, trim_whitespace=False, max_length=2_000_000)
    all_or_nothing = serializers.BooleanField(default=False)

    MAX_FILE_BYTES = 2_000_000

    def validate(self, attrs: dict) -> dict:
        upload, text = attrs.get("file"), attrs.get("csv")
        if (upload is None) == (text is None):
            raise serializers.ValidationError("Send the CSV either as `file` or as `csv`.")
        if upload is not None:
            if upload.size > self.MAX_FILE_BYTES:
                raise serializers.ValidationError({"file": "At most 2 MB per import."})
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise serializers.ValidationError({"file": "The CSV must be UTF-8."}) from exc
        return {"text": text, "all_or_nothing": attrs["all_or_nothing"]}


class ImportReportSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = serializers.ListField(child=serializers.DictField())
    applied = serializers.BooleanField()


class JobSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "progress",
            "created_at",
            "started_at",
            "finished_at",
            "attempts",
            "report",
            "error",
        ]

    def get_progress(self, job: Job) -> dict[str, int | None]:
        return {"done": job.done, "total": job.total}


class JobEnvelopeSerializer(serializers.Serializer):
    job = JobSerializer()


class AnalyticsQuerySerializer(serializers.Serializer):
    """The bounds of every analytics read: a period of whole days up to a year, short lists."""

    days = serializers.IntegerField(min_value=1, max_value=MAX_DAYS, default=DEFAULT_DAYS)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    category = serializers.CharField(max_length=100, required=False)
    product = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)


class RankMovementQuerySerializer(AnalyticsQuerySerializer):
    product = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
