from rest_framework import serializers

from gamification.serializers import NewAchievementSerializer, StreakSerializer
from rankings.models import MAX_RANKED_PRODUCTS, ProductRanking

BIGINT_MAX = 2**63 - 1


class StrictIntegerField(serializers.IntegerField):
    """An integer as a JSON number: "5", 5.0 and true are refused, not coerced."""

    default_error_messages = {"invalid": "Must be an integer (a JSON number), not {kind}."}

    def to_internal_value(self, data: object) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid", kind=type(data).__name__)
        return super().to_internal_value(data)


class RankingSubmitSerializer(serializers.Serializer):
    category = serializers.CharField(max_length=100)
    product_ids = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=BIGINT_MAX),
        min_length=1,
        max_length=MAX_RANKED_PRODUCTS,
        error_messages={
            "not_a_list": "Send product_ids as a list of product ids, best first.",
            "empty": "Rank at least one product.",
            "min_length": "Rank at least one product.",
            "max_length": f"Rank at most {MAX_RANKED_PRODUCTS} products.",
        },
    )


class RankingSerializer(serializers.ModelSerializer):
    product_name = serializers.CharField(source="product.name", read_only=True)

    class Meta:
        model = ProductRanking
        fields = ["product", "product_name", "category", "position", "points", "updated_at"]


class RankingResultSerializer(serializers.Serializer):
    rankings = RankingSerializer(many=True)
    points_awarded = serializers.IntegerField()
    streak = StreakSerializer()
    new_achievements = NewAchievementSerializer(many=True)


class CategoryQuerySerializer(serializers.Serializer):
    category = serializers.CharField(
        max_length=100,
        error_messages={"required": "category is required.", "blank": "category is required."},
    )


class ProductStatsSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    score = serializers.IntegerField()
    rankers = serializers.IntegerField()
    average_position = serializers.FloatField(allow_null=True)
    first_place_votes = serializers.IntegerField()


class CategoryStatsSerializer(ProductStatsSerializer):
    name = serializers.CharField()
    slug = serializers.CharField()
    brand = serializers.CharField()
