from drf_spectacular.utils import extend_schema
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from products import selectors, services
from products.serializers import (
    CategorySerializer,
    ProductDetailSerializer,
    ProductListQuerySerializer,
    ProductSerializer,
)
from rankings.selectors import product_stats


class ProductViewSet(viewsets.GenericViewSet):
    """The catalogue: search, browse by category, and one product in detail."""

    permission_classes = [permissions.AllowAny]
    serializer_class = ProductSerializer
    lookup_value_regex = r"\d{1,18}"

    @extend_schema(parameters=[ProductListQuerySerializer])
    def list(self, request: Request) -> Response:
        query = ProductListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        search, category = query.validated_data["search"], query.validated_data["category"]
        page = self.paginate_queryset(selectors.product_list(search=search, category=category))
        response = self.get_paginated_response(ProductSerializer(page, many=True).data)
        if search.strip():
            user_id = request.user.pk if request.user.is_authenticated else None
            services.product_search_record(
                user_id=user_id, query=search, result_count=response.data["count"]
            )
        return response

    @extend_schema(responses=ProductDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        product = selectors.product_get(product_id=int(pk))
        if product is None:
            raise NotFound("No active product has this id.")
        data = ProductDetailSerializer(product).data
        data["ranking_stats"] = product_stats(product_id=product.pk)
        return Response(data)

    @extend_schema(responses=CategorySerializer(many=True))
    @action(detail=False, pagination_class=None)
    def categories(self, request: Request) -> Response:
        return Response(CategorySerializer(selectors.product_categories(), many=True).data)
