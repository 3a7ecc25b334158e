from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services
from accounts.authentication import request_user
from accounts.serializers import (
    EmailSerializer,
    SignInSerializer,
    UserSerializer,
    UserSessionSerializer,
    UserUpdateSerializer,
    VerifySerializer,
)
from config.api import ServiceUnavailable
from config.client_ip import client_ip


class CustomerViewSet(viewsets.GenericViewSet):
    """Passwordless sign-in and the signed-in customer's profile."""

    serializer_class = UserSerializer

    @extend_schema(request=EmailSerializer, responses={202: None})
    @action(
        detail=False,
        methods=["post"],
        url_path="email-login",
        permission_classes=[permissions.AllowAny],
    )
    def email_login(self, request: Request) -> Response:
        serializer = EmailSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.login_code_request(email=serializer.validated_data["email"])
        except services.LoginEmailUnavailable as error:
            raise ServiceUnavailable(
                "The sign-in e-mail could not be sent; try again in a few minutes.",
                code="email_unavailable",
            ) from error
        # The same answer whether or not the address has an account.
        return Response(
            {"detail": "If this address can sign in, a code is on its way."},
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(request=VerifySerializer, responses={200: SignInSerializer})
    @action(
        detail=False,
        methods=["post"],
        url_path="email-login/verify",
        permission_classes=[permissions.AllowAny],
    )
    def email_login_verify(self, request: Request) -> Response:
        serializer = VerifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user = services.login_code_verify(**serializer.validated_data)
        except services.LoginCodeLocked as error:
            raise Throttled(
                wait=error.retry_after, detail=str(error), code="too_many_wrong_codes"
            ) from error
        except services.InvalidLoginCode as error:
            raise ValidationError({"code": [str(error)]}, code="invalid_code") from error
        sign_in = services.user_session_start(
            request=request._request, user=user, ip_address=client_ip(request)
        )
        return Response(SignInSerializer(sign_in).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=False, methods=["post"])
    def logout(self, request: Request) -> Response:
        session_id = selectors.current_user_session_id(request=request, auth=request.auth)
        user_session = (
            selectors.sessions_for_user(user=request_user(request)).filter(pk=session_id).first()
            if session_id is not None
            else None
        )
        services.user_logout(request=request._request, user_session=user_session)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(methods=["patch"], request=UserUpdateSerializer, responses=UserSerializer)
    @action(detail=False, methods=["get", "patch"])
    def me(self, request: Request) -> Response:
        if request.method == "PATCH":
            serializer = UserUpdateSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            services.user_update(user=request_user(request), **serializer.validated_data)
        return Response(UserSerializer(request.user).data)


class UserSessionViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The signed-in customer's devices; deleting one signs that device out."""

    serializer_class = UserSessionSerializer
    pagination_class = None
    lookup_value_regex = r"\d{1,18}"

    def get_queryset(self):
        return selectors.sessions_for_user(user=self.request.user)

    def get_serializer_context(self) -> dict:
        current_id = selectors.current_user_session_id(request=self.request, auth=self.request.auth)
        return {**super().get_serializer_context(), "current_id": current_id}

    def perform_destroy(self, instance) -> None:
        services.user_session_end(user_session=instance)
