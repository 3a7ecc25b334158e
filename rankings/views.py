from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import request_user
from config.http_cache import http_cache, rendered_response
from products.caching import ProductNotFound, product_detail_cached
from rankings import caching, selectors, services
from rankings.serializers import (
    CategoryQuerySerializer,
    CategoryStatsSerializer,
    ProductStatsSerializer,
    RankingResultSerializer,
    RankingSerializer,
    RankingSubmitSerializer,
)


class RankingViewSet(viewsets.GenericViewSet):
    """Submit your ranking of a category, see yours, and the community's Borda stats."""

    serializer_class = RankingSerializer
    pagination_class = None

    @extend_schema(request=RankingSubmitSerializer, responses={201: RankingResultSerializer})
    def create(self, request: Request) -> Response:
        serializer = RankingSubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            result = services.ranking_submit(
                user=request_user(request), **serializer.validated_data
            )
        except services.InvalidRanking as error:
            raise ValidationError({"product_ids": [str(error)]}, code="invalid_ranking") from error
        return Response(RankingResultSerializer(result).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=RankingSerializer(many=True))
    @action(detail=False)
    def mine(self, request: Request) -> Response:
        rankings = selectors.rankings_for_user(user=request_user(request))
        return Response(RankingSerializer(rankings, many=True).data)

    @extend_schema(
        parameters=[CategoryQuerySerializer], responses=CategoryStatsSerializer(many=True)
    )
    @action(detail=False, permission_classes=[permissions.AllowAny])
    @http_cache()
    def stats(self, request: Request) -> HttpResponse:
        query = CategoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        category = query.validated_data["category"]
        return rendered_response(caching.category_stats_cached(category=category))

    @extend_schema(responses=ProductStatsSerializer)
    @action(
        detail=False,
        url_path=r"stats/(?P<product_id>\d{1,18})",
        permission_classes=[permissions.AllowAny],
    )
    @http_cache()
    def product_stats(self, request: Request, product_id: str) -> HttpResponse:
        try:
            # The catalogue's cached detail answers "is it active?" without a query.
            product_detail_cached(product_id=int(product_id))
        except ProductNotFound:
            raise NotFound("No active product has this id.") from None
        return rendered_response(caching.product_stats_cached(product_id=int(product_id)))
