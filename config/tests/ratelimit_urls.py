"""The project's routes plus trivial probes under each limited prefix, for the rate-limit tests.

The probes let anyone in, so a 401 or 403 under /api/admin/ or /api/tools/ can only come from the
middleware's employee rule.
"""

from django.urls import path
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as project_urlpatterns


class Probe(APIView):
    permission_classes = [permissions.AllowAny]

    def get(self, request: Request) -> Response:
        return Response({"user_id": request.user.pk})

    def post(self, request: Request) -> Response:
        return Response({"ok": True}, status=201)


urlpatterns = [
    path("api/gamification/probe", Probe.as_view()),
    path("api/rankings/probe", Probe.as_view()),
    path("api/admin/probe", Probe.as_view()),
    path("api/tools/probe", Probe.as_view()),
    *project_urlpatterns,
]
