from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param

from config.api import PageNumberPagination
from config.http_cache import http_cache, json_object, rendered_response
from products import caching, services
from products.hooks import product_detail_parts
from products.serializers import (
    CategorySerializer,
    ProductDetailSerializer,
    ProductListQuerySerializer,
    ProductSerializer,
)


class ProductViewSet(viewsets.GenericViewSet):
    """The catalogue: search, browse by category, and one product in detail."""

    permission_classes = [permissions.AllowAny]
    serializer_class = ProductSerializer
    lookup_value_regex = r"\d{1,18}"

    @extend_schema(parameters=[ProductListQuerySerializer])
    @http_cache()
    def list(self, request: Request) -> HttpResponse:
        query = ProductListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        search, category = query.validated_data["search"], query.validated_data["category"]
        paginator = self.paginator
        assert isinstance(paginator, PageNumberPagination), "the catalogue is always paginated"
        try:
            page = caching.products_page_cached(
                search=search,
                category=category,
                page=query.validated_data["page"],
                page_size=paginator.get_page_size(request),
            )
        except caching.PageOutOfRange:
            raise NotFound("Invalid page.") from None
        if search.strip():
            user_id = request.user.pk if request.user.is_authenticated else None
            services.product_search_record(
                user_id=user_id, query=search, result_count=page["count"]
            )
        response = rendered_response(
            json_object(
                count=page["count"],
                next=_page_link(request, page["page"] + 1, page["num_pages"]),
                previous=_page_link(request, page["page"] - 1, page["num_pages"]),
                results=page["results"],
            )
        )
        if search.strip():
            # Every search must reach Rankly to be recorded; a 304 still saves the body.
            response["Cache-Control"] = "no-cache"
        return response

    @extend_schema(responses=ProductDetailSerializer)
    @http_cache()
    def retrieve(self, request: Request, pk: str) -> HttpResponse:
        try:
            detail = caching.product_detail_cached(product_id=int(pk))
        except caching.ProductNotFound:
            raise NotFound("No active product has this id.") from None
        # Each part is cached, with its own type's TTL and invalidation.
        parts = product_detail_parts(product_id=int(pk))
        return rendered_response(json_object(detail, **parts))

    @extend_schema(responses=CategorySerializer(many=True))
    @action(detail=False, pagination_class=None)
    @http_cache()
    def categories(self, request: Request) -> HttpResponse:
        return rendered_response(caching.product_categories_cached())


def _page_link(request: Request, number: int, num_pages: int) -> str | None:
    """The link DRF's page-number pagination would give, built per request (not cached)."""
    if number < 1 or number > num_pages:
        return None
    url = request.build_absolute_uri()
    if number == 1:
        return remove_query_param(url, "page")
    return replace_query_param(url, "page", number)
