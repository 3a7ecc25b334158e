from datetime import timedelta

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import LoginCode, User, UserSession
from accounts.tests.factories import UserFactory
from adminops.demo import demo_data_seed
from gamification.models import ActivityKind, ActivityLog

pytestmark = pytest.mark.django_db

MODELS = [
    "accounts.user",
    "accounts.logincode",
    "accounts.usersession",
    "products.product",
    "products.productmetadata",
    "products.userproductsearch",
    "rankings.productranking",
    "gamification.achievement",
    "gamification.userachievement",
    "gamification.streak",
    "gamification.activitylog",
    "gamification.pageview",
]


def add_rows(*, users: int) -> None:
    """Every model gets rows: the demo set, plus codes, sessions and an employee adjustment."""
    demo_data_seed(users=users, products=20, seed=users)
    now = timezone.now()
    employee = User.objects.filter(is_staff=True).first()
    for user in User.objects.filter(is_staff=False).order_by("-id")[:users]:
        LoginCode.objects.create(
            email=user.email, code_hash="0" * 64, expires_at=now + timedelta(minutes=10)
        )
        UserSession.objects.create(user=user, token_hash=f"{user.pk:064d}", device="Firefox")
        ActivityLog.objects.create(
            user=user,
            kind=ActivityKind.ADJUSTMENT,
            points=5,
            local_date=now.date(),
            actor=employee,
            reason="Goodwill",
        )


@pytest.fixture
def employee_client() -> Client:
    employee = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(employee)
    return client


def changelist_url(label: str) -> str:
    app_label, model_name = label.split(".")
    return reverse(f"admin:{app_label}_{model_name}_changelist")


def test_every_model_is_registered():
    registered = {f"{m._meta.app_label}.{m._meta.model_name}" for m in admin.site._registry}

    assert set(MODELS) <= registered


@pytest.mark.parametrize("label", MODELS)
def test_employee_opens_the_changelist_and_a_change_page(employee_client, label):
    add_rows(users=5)
    model = next(
        m for m in admin.site._registry if f"{m._meta.app_label}.{m._meta.model_name}" == label
    )
    obj = model.objects.order_by("pk").last()
    app_label, model_name = label.split(".")

    listing = employee_client.get(changelist_url(label))
    detail = employee_client.get(reverse(f"admin:{app_label}_{model_name}_change", args=[obj.pk]))
    searched = employee_client.get(changelist_url(label), {"q": "a"})

    assert listing.status_code == 200
    assert detail.status_code == 200
    assert searched.status_code == 200


@pytest.mark.parametrize("label", MODELS)
def test_changelist_queries_do_not_grow_with_rows(employee_client, label):
    add_rows(users=3)
    employee_client.get(changelist_url(label))
    with CaptureQueriesContext(connection) as few:
        assert employee_client.get(changelist_url(label)).status_code == 200

    add_rows(users=30)
    with CaptureQueriesContext(connection) as many:
        assert employee_client.get(changelist_url(label)).status_code == 200

    assert len(many) == len(few)


def test_the_ledger_cannot_be_edited_or_deleted_in_the_admin(employee_client):
    add_rows(users=3)
    row = ActivityLog.objects.first()
    change_url = reverse("admin:gamification_activitylog_change", args=[row.pk])

    employee_client.post(change_url, {"points": 1000, "kind": ActivityKind.ADJUSTMENT})
    add = employee_client.get(reverse("admin:gamification_activitylog_add"))
    delete = employee_client.post(
        reverse("admin:gamification_activitylog_delete", args=[row.pk]), {"post": "yes"}
    )

    assert add.status_code == 403
    assert delete.status_code == 403
    row.refresh_from_db()
    assert row.points != 1000


def test_deleting_a_session_in_the_admin_signs_that_device_out(employee_client):
    user = UserFactory()
    user_session = UserSession.objects.create(user=user, token_hash="f" * 64)

    response = employee_client.post(
        reverse("admin:accounts_usersession_delete", args=[user_session.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not UserSession.objects.filter(pk=user_session.pk).exists()


def test_employee_adds_a_user_by_email_whatever_its_case(employee_client):
    UserFactory(email="taken@example.com")
    add_url = reverse("admin:accounts_user_add")
    form = {"usable_password": "false", "password1": "", "password2": ""}

    duplicate = employee_client.post(add_url, {**form, "email": "TAKEN@example.com"})
    created = employee_client.post(add_url, {**form, "email": "New.Person@Example.com"})

    assert duplicate.status_code == 200
    assert User.objects.filter(email="taken@example.com").count() == 1
    assert created.status_code == 302
    assert User.objects.filter(email="new.person@example.com").exists()


def test_employee_cannot_add_a_second_account_for_one_mailbox(employee_client):
    UserFactory(email="user@xn--bcher-kva.example")
    add_url = reverse("admin:accounts_user_add")
    form = {"usable_password": "false", "password1": "", "password2": ""}

    unicode_twin = employee_client.post(add_url, {**form, "email": "user@bücher.example"})
    quoted = employee_client.post(add_url, {**form, "email": '"jane"@example.com'})

    assert unicode_twin.status_code == quoted.status_code == 200
    assert "Quoted e-mail addresses are not accepted." in quoted.content.decode()
    assert User.objects.filter(email__startswith="user@").count() == 1
    assert not User.objects.filter(email__contains="jane").exists()


def test_a_customer_cannot_open_the_admin():
    customer = UserFactory()
    client = Client()
    client.force_login(customer)

    response = client.get(changelist_url("accounts.user"))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
