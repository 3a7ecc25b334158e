from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import request_user, request_user_or_none
from config.http_cache import http_cache, rendered_response
from gamification import caching, selectors, services
from gamification.serializers import (
    AchievementDefinitionSerializer,
    ActivitySerializer,
    HomeStatsSerializer,
    LeaderboardQuerySerializer,
    LeaderboardSerializer,
    MyAchievementsSerializer,
    PageViewSerializer,
    PositionQuerySerializer,
    PositionSerializer,
    StreakSerializer,
)

if TYPE_CHECKING:
    from rest_framework.permissions import _SupportsHasPermission


class LeaderboardViewSet(viewsets.GenericViewSet):
    """Players by points: all time (`all`) or in the current UTC day, ISO week or month."""

    serializer_class = LeaderboardSerializer
    # One object with its entries, not a page of a list: no page parameters in the schema.
    pagination_class = None

    @extend_schema(parameters=[LeaderboardQuerySerializer])
    @http_cache()
    def list(self, request: Request) -> HttpResponse:
        query = LeaderboardQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return rendered_response(caching.leaderboard_cached(**query.validated_data))

    def get_permissions(self) -> "Sequence[_SupportsHasPermission]":
        if self.action == "list":
            return [permissions.AllowAny()]
        return super().get_permissions()

    @extend_schema(parameters=[PositionQuerySerializer], responses=PositionSerializer)
    @action(detail=False)
    @http_cache(per_user=True)
    def position(self, request: Request) -> HttpResponse:
        query = PositionQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return rendered_response(
            caching.leaderboard_position_cached(user=request_user(request), **query.validated_data)
        )


class HomeStatsViewSet(viewsets.GenericViewSet):
    """The community at a glance."""

    permission_classes = [permissions.AllowAny]
    serializer_class = HomeStatsSerializer
    pagination_class = None

    @http_cache()
    def list(self, request: Request) -> HttpResponse:
        return rendered_response(caching.home_stats_cached())


class AchievementViewSet(viewsets.GenericViewSet):
    """Every achievement; hidden ones stay masked until the viewer unlocks them."""

    permission_classes = [permissions.AllowAny]
    serializer_class = AchievementDefinitionSerializer
    pagination_class = None

    @extend_schema(responses=AchievementDefinitionSerializer(many=True))
    # Hidden achievements show to the users who unlocked them: the answer depends on who asks.
    @http_cache(per_user=True)
    def list(self, request: Request) -> HttpResponse:
        if not request.user.is_authenticated:
            return rendered_response(caching.achievements_public_cached())
        definitions = selectors.achievements_for_viewer(user=request.user)
        return Response(AchievementDefinitionSerializer(definitions, many=True).data)


class MeViewSet(viewsets.GenericViewSet):
    """The signed-in user's game: achievements, streak and points ledger."""

    serializer_class = ActivitySerializer

    @extend_schema(responses=MyAchievementsSerializer)
    @action(detail=False)
    def achievements(self, request: Request) -> Response:
        mine = {
            "unlocked": selectors.achievements_for_user(user=request_user(request)),
            "in_progress": selectors.achievements_in_progress(user=request_user(request)),
            "hidden_locked": selectors.hidden_achievements_locked_count(user=request_user(request)),
        }
        return Response(MyAchievementsSerializer(mine).data)

    @extend_schema(responses=StreakSerializer)
    @action(detail=False)
    def streak(self, request: Request) -> Response:
        return Response(
            StreakSerializer(selectors.streak_for_user(user=request_user(request))).data
        )

    @extend_schema(responses=ActivitySerializer(many=True))
    @action(detail=False)
    def activity(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.activity_for_user(user=request_user(request)))
        return self.get_paginated_response(ActivitySerializer(page, many=True).data)


class PageViewViewSet(viewsets.GenericViewSet):
    """Count a page view, signed in or not."""

    permission_classes = [permissions.AllowAny]
    serializer_class = PageViewSerializer

    @extend_schema(request=PageViewSerializer, responses={201: None})
    def create(self, request: Request) -> Response:
        serializer = PageViewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.page_view_record(
                user=request_user_or_none(request),
                session_key=request.session.session_key or "",
                **serializer.validated_data,
            )
        except services.InvalidPageView as error:
            raise ValidationError({"product_id": [str(error)]}, code="invalid") from error
        return Response(status=status.HTTP_201_CREATED)
