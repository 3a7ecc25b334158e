import re

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("config.tests.ratelimit_urls")]

EMPLOYEE_PATHS = ["/api/admin/probe", "/api/tools/probe"]


def session_signed_in(email: str) -> APIClient:
    """A browser-like client signed in by e-mail code: only session and CSRF cookies."""
    client = APIClient(enforce_csrf_checks=True)
    client.post("/api/customer/email-login", {"email": email}, format="json")
    code = re.search(r"\d{6}", mail.outbox[-1].subject).group()
    response = client.post(
        "/api/customer/email-login/verify", {"email": email, "code": code}, format="json"
    )
    assert response.status_code == 200
    assert "sessionid" in client.cookies and "csrftoken" in client.cookies
    return client


def csrf_header(client: APIClient) -> dict:
    return {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}


@pytest.mark.parametrize("path", EMPLOYEE_PATHS)
def test_anonymous_callers_get_401_even_where_the_view_lets_anyone_in(api_client, path):
    response = api_client.get(path)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("path", ["/api/admin/no-such-route/", "/api/tools"])
def test_the_rule_holds_before_routing_for_any_path_under_the_prefixes(api_client, path):
    assert api_client.get(path).status_code == 401


@pytest.mark.parametrize("path", EMPLOYEE_PATHS)
def test_customers_get_403(user_client, path):
    response = user_client.get(path)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize("path", EMPLOYEE_PATHS)
def test_employees_pass(staff_client, path):
    assert staff_client.get(path).status_code == 200


def test_a_revoked_token_gets_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token no-such-token")
    response = api_client.get("/api/admin/probe")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_an_inactive_employee_is_refused(staff_user, staff_client):
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])
    assert staff_client.get("/api/admin/probe").status_code == 401


def test_an_employee_on_a_session_needs_csrf_to_write():
    UserFactory(email="boss@example.com", is_staff=True)
    client = session_signed_in("boss@example.com")
    assert client.get("/api/admin/probe").status_code == 200
    refused = client.post("/api/admin/probe", {}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    accepted = client.post("/api/admin/probe", {}, format="json", **csrf_header(client))
    assert accepted.status_code == 201


def test_a_customer_on_a_session_needs_csrf_to_write():
    client = session_signed_in("reader@example.com")
    change = {"display_name": "Reader"}
    refused = client.patch("/api/customer/me", change, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    accepted = client.patch("/api/customer/me", change, format="json", **csrf_header(client))
    assert accepted.status_code == 200
    assert accepted.json()["display_name"] == "Reader"


def test_a_token_client_writes_without_csrf(user, user_client):
    user_client.handler.enforce_csrf_checks = True
    response = user_client.patch("/api/customer/me", {"display_name": "Token"}, format="json")
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.display_name == "Token"


def test_forced_authentication_in_tests_meets_the_same_rule(api_client, user, staff_user):
    api_client.force_authenticate(user=user)
    assert api_client.get("/api/tools/probe").status_code == 403
    api_client.force_authenticate(user=staff_user)
    assert api_client.get("/api/tools/probe").status_code == 200


def test_a_session_employee_reaches_the_view_as_themselves(client, staff_user):
    client.force_login(staff_user)
    response = client.get("/api/admin/probe")
    assert response.status_code == 200
    assert response.json() == {"user_id": staff_user.pk}
