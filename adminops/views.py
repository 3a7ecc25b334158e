from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, parsers, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from accounts import services as account_services
from accounts.authentication import request_user
from accounts.models import User
from adminops import caching as analytics
from adminops import selectors, services
from adminops.models import JobKind
from adminops.serializers import (
    AdminAchievementSerializer,
    AdminProductSerializer,
    AdminUserSerializer,
    AnalyticsQuerySerializer,
    AuditLogSerializer,
    CacheStatsSerializer,
    JobEnvelopeSerializer,
    JobSerializer,
    LeaderboardExclusionSerializer,
    PointsAdjustSerializer,
    ProductImportSerializer,
    RankMovementQuerySerializer,
    StreakRepairSerializer,
    StreakStateSerializer,
)
from config.api import JSONParser
from config.caching import CacheType
from config.metrics import metrics_snapshot
from config.services import ActionRefused
from gamification import services as game_services
from gamification.models import Achievement
from products import importing
from products import services as product_services
from products.models import Product


class IsEmployee(permissions.BasePermission):
    """Employees only: anonymous requests get 401, customers 403."""

    message = "Only employees may use this."

    def has_permission(self, request: Request, view: object) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class EmployeeViewSet(viewsets.GenericViewSet):
    permission_classes = [IsEmployee]
    lookup_value_regex = r"\d{1,18}"

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ActionRefused):
            exc = Conflict(str(exc))
        return super().handle_exception(exc)


class EmployeeCrudViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    EmployeeViewSet,
):
    """DRF's CRUD actions, with every write made by an audited service in perform_*."""


class AdminProductViewSet(EmployeeCrudViewSet):
    """Products with their metadata; every write invalidates the caches products feed."""

    serializer_class = AdminProductSerializer

    def get_queryset(self):
        return selectors.admin_product_list(search=self.request.query_params.get("search", ""))

    def perform_create(self, serializer: BaseSerializer[Product]) -> None:
        fields = dict(serializer.validated_data)
        metadata = fields.pop("metadata", None)
        serializer.instance = product_services.product_create(
            actor=request_user(self.request), fields=fields, metadata=metadata
        )

    def perform_update(self, serializer: BaseSerializer[Product]) -> None:
        fields = dict(serializer.validated_data)
        metadata = fields.pop("metadata", None)
        assert serializer.instance is not None, "an update has the instance it updates"
        serializer.instance = product_services.product_update(
            actor=request_user(self.request),
            product=serializer.instance,
            fields=fields,
            metadata=metadata,
        )

    def perform_destroy(self, instance) -> None:
        product_services.product_delete(actor=request_user(self.request), product=instance)


class AdminAchievementViewSet(EmployeeCrudViewSet):
    """Achievement definitions; every write invalidates the cached definitions."""

    serializer_class = AdminAchievementSerializer
    pagination_class = None

    def get_queryset(self):
        return selectors.admin_achievement_list()

    def perform_create(self, serializer: BaseSerializer[Achievement]) -> None:
        serializer.instance = game_services.achievement_create(
            actor=request_user(self.request), fields=dict(serializer.validated_data)
        )

    def perform_update(self, serializer: BaseSerializer[Achievement]) -> None:
        assert serializer.instance is not None, "an update has the instance it updates"
        serializer.instance = game_services.achievement_update(
            actor=request_user(self.request),
            achievement=serializer.instance,
            fields=dict(serializer.validated_data),
        )

    def perform_destroy(self, instance) -> None:
        game_services.achievement_delete(actor=request_user(self.request), achievement=instance)


class AdminUserViewSet(EmployeeViewSet):
    """A user's standing in the game, and the repairs employees make to it."""

    queryset = User.objects.all()
    serializer_class = AdminUserSerializer

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(AdminUserSerializer(self.get_object()).data)

    @extend_schema(request=PointsAdjustSerializer, responses=AdminUserSerializer)
    @action(detail=True, methods=["post"])
    def points(self, request: Request, pk: str) -> Response:
        data = self._valid(PointsAdjustSerializer, request)
        user = game_services.user_points_adjust(
            actor=request_user(request), user=self.get_object(), **data
        )
        return Response(AdminUserSerializer(user).data)

    @extend_schema(request=LeaderboardExclusionSerializer, responses=AdminUserSerializer)
    @action(detail=True, methods=["post"], url_path="leaderboard-exclusion")
    def leaderboard_exclusion(self, request: Request, pk: str) -> Response:
        data = self._valid(LeaderboardExclusionSerializer, request)
        user = account_services.user_leaderboard_exclusion_set(
            actor=request_user(request), user=self.get_object(), **data
        )
        return Response(AdminUserSerializer(user).data)

    @extend_schema(request=StreakRepairSerializer, responses=StreakStateSerializer)
    @action(detail=True, methods=["post"])
    def streak(self, request: Request, pk: str) -> Response:
        data = self._valid(StreakRepairSerializer, request)
        streak = game_services.streak_repair(
            actor=request_user(request), user=self.get_object(), **data
        )
        return Response(StreakStateSerializer(streak).data)

    @staticmethod
    def _valid(serializer_class, request: Request) -> dict:
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class CacheViewSet(EmployeeViewSet):
    """Hit and miss counts per cache type in this instance; flush one type everywhere."""

    serializer_class = CacheStatsSerializer
    pagination_class = None
    lookup_value_regex = "|".join(t.value for t in CacheType)

    def list(self, request: Request) -> Response:
        return Response(CacheStatsSerializer(selectors.cache_stats_report(), many=True).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"])
    def flush(self, request: Request, pk: str) -> Response:
        services.cache_flush(actor=request_user(request), cache_type=CacheType(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MetricsViewSet(EmployeeViewSet):
    """This instance's latency percentiles, responses by status class, caches, sockets, pool."""

    pagination_class = None

    @extend_schema(responses=dict)
    def list(self, request: Request) -> Response:
        return Response(metrics_snapshot())


class AnalyticsViewSet(EmployeeViewSet):
    """Employees' analytics over the last `days` (1 to 365), lists of at most `limit` (1 to 100),
    each cached for minutes under its own type."""

    pagination_class = None

    def _query(self, serializer_class=AnalyticsQuerySerializer) -> dict:
        serializer = serializer_class(data=self.request.query_params)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(parameters=[AnalyticsQuerySerializer], responses=dict)
    @action(detail=False)
    def searches(self, request: Request) -> Response:
        """The most searched queries and the searches that found nothing."""
        query = self._query()
        return Response(analytics.analytics_searches(days=query["days"], limit=query["limit"]))

    @extend_schema(parameters=[AnalyticsQuerySerializer], responses=dict)
    @action(detail=False)
    def views(self, request: Request) -> Response:
        """Page views per day (of one product with `product`), most viewed products and paths."""
        query = self._query()
        return Response(
            analytics.analytics_views(
                days=query["days"], limit=query["limit"], product_id=query.get("product")
            )
        )

    @extend_schema(parameters=[AnalyticsQuerySerializer], responses=dict)
    @action(detail=False, url_path="active-users")
    def active_users(self, request: Request) -> Response:
        """Signed-in users who viewed a page, per day and per week."""
        return Response(analytics.analytics_active_users(days=self._query()["days"]))

    @extend_schema(parameters=[AnalyticsQuerySerializer], responses=dict)
    @action(detail=False)
    def streaks(self, request: Request) -> Response:
        """The longest live streaks, the longest ever, the freezes live streaks hold."""
        return Response(analytics.analytics_streaks(limit=self._query()["limit"]))

    @extend_schema(parameters=[AnalyticsQuerySerializer], responses=dict)
    @action(detail=False)
    def achievements(self, request: Request) -> Response:
        """Unlock rate of each achievement, unlocks in the period and the time to unlock."""
        return Response(analytics.analytics_achievements(days=self._query()["days"]))

    @extend_schema(parameters=[AnalyticsQuerySerializer], responses=dict)
    @action(detail=False)
    def rankings(self, request: Request) -> Response:
        """Rankings per category per day (of one category with `category`)."""
        query = self._query()
        return Response(
            analytics.analytics_rankings(days=query["days"], category=query.get("category"))
        )

    @extend_schema(parameters=[RankMovementQuerySerializer], responses=dict)
    @action(detail=False, url_path="rank-movement")
    def rank_movement(self, request: Request) -> Response:
        """A product's average position per day, from the rankings submitted that day."""
        query = self._query(RankMovementQuerySerializer)
        return Response(
            analytics.analytics_rank_movement(product_id=query["product"], days=query["days"])
        )


class AuditLogViewSet(mixins.ListModelMixin, EmployeeViewSet):
    """What employees did, newest first; filter with ?target_type=&target_id=."""

    serializer_class = AuditLogSerializer

    def get_queryset(self):
        params = self.request.query_params
        return selectors.audit_log_list(
            target_type=params.get("target_type", "")[:50],
            target_id=params.get("target_id", "")[:100],
        )


class ToolViewSet(EmployeeViewSet):
    """Repairs and bulk jobs, run in the background: each POST answers 202 with the queued job
    (200 with the run already queued or running), watched under /api/tools/jobs/."""

    pagination_class = None
    parser_classes = [JSONParser, parsers.MultiPartParser, parsers.FormParser]

    @staticmethod
    def _started(kind: JobKind, request: Request, params: dict | None = None) -> Response:
        job, created = services.job_start(kind=kind, actor=request_user(request), params=params)
        return Response(
            {"job": JobSerializer(job).data},
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        )

    @extend_schema(request=None, responses={202: JobEnvelopeSerializer, 200: JobEnvelopeSerializer})
    @action(detail=False, methods=["post"], url_path="warm-caches")
    def warm_caches(self, request: Request) -> Response:
        return self._started(JobKind.WARM_CACHES, request)

    @extend_schema(request=None, responses={202: JobEnvelopeSerializer, 200: JobEnvelopeSerializer})
    @action(detail=False, methods=["post"], url_path="rebuild-points")
    def rebuild_points(self, request: Request) -> Response:
        return self._started(JobKind.REBUILD_POINTS, request)

    @extend_schema(request=None, responses={202: JobEnvelopeSerializer, 200: JobEnvelopeSerializer})
    @action(detail=False, methods=["post"], url_path="rebuild-ranking-stats")
    def rebuild_ranking_stats(self, request: Request) -> Response:
        return self._started(JobKind.REBUILD_RANKING_STATS, request)

    @extend_schema(request=None, responses={202: JobEnvelopeSerializer, 200: JobEnvelopeSerializer})
    @action(detail=False, methods=["post"], url_path="reevaluate-achievements")
    def reevaluate_achievements(self, request: Request) -> Response:
        return self._started(JobKind.REEVALUATE_ACHIEVEMENTS, request)

    @extend_schema(
        request=ProductImportSerializer,
        responses={202: JobEnvelopeSerializer, 200: JobEnvelopeSerializer},
    )
    @action(detail=False, methods=["post"], url_path="import-products")
    def import_products(self, request: Request) -> Response:
        serializer = ProductImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        text = serializer.validated_data["text"]
        try:
            importing.products_csv_check(text=text)
        except importing.CsvImportError as exc:
            raise exceptions.ValidationError({"csv": [str(exc)]}) from exc
        params = {"text": text, "all_or_nothing": serializer.validated_data["all_or_nothing"]}
        return self._started(JobKind.IMPORT_PRODUCTS, request, params)


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, EmployeeViewSet):
    """The tools' runs, newest first: status, progress (done of total) and the final report."""

    serializer_class = JobSerializer

    def get_queryset(self):
        return selectors.job_list(status=self.request.query_params.get("status", "")[:20])
