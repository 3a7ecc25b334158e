from rest_framework import serializers

from products.models import Product, ProductMetadata


class ProductListQuerySerializer(serializers.Serializer):
    search = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    category = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    page = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, default=1)


class ProductMetadataSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProductMetadata
        fields = ["description", "attributes", "tags", "view_count", "ranking_count", "updated_at"]


class ProductSerializer(serializers.ModelSerializer):
    ranking_count = serializers.IntegerField(source="metadata.ranking_count", default=0)

    class Meta:
        model = Product
        fields = ["id", "name", "slug", "brand", "category", "image_url", "ranking_count"]


class ProductDetailSerializer(serializers.ModelSerializer):
    metadata = ProductMetadataSerializer(default=None)

    class Meta:
        model = Product
        fields = [
            "id",
            "name",
            "slug",
            "brand",
            "category",
            "image_url",
            "created_at",
            "updated_at",
            "metadata",
        ]


class CategorySerializer(serializers.Serializer):
    category = serializers.CharField()
    product_count = serializers.IntegerField()
