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
from adminops.models import AuditAction, AuditLog
from config.caching import CacheType
from gamification.models import ActivityKind, ActivityLog, Streak
from products.models import ProductMetadata
from products.tests.factories import ProductFactory

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


def user_change_form(user: User, **changes) -> dict:
    form = {
        "email": user.email,
        "display_name": user.display_name,
        "timezone": user.timezone,
        "is_active": "on",
    }
    return {**form, **changes}


def test_leaderboard_exclusion_set_in_the_admin_is_audited_and_refills_the_boards(
    employee_client, fill_cache, django_capture_on_commit_callbacks
):
    user = UserFactory()
    board_cached = fill_cache(CacheType.LEADERBOARD)
    position_cached = fill_cache(CacheType.LEADERBOARD_POSITION)

    with django_capture_on_commit_callbacks(execute=True):
        response = employee_client.post(
            reverse("admin:accounts_user_change", args=[user.pk]),
            user_change_form(user, leaderboard_excluded="on"),
        )

    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()
    assert user.leaderboard_excluded
    entry = AuditLog.objects.get(action=AuditAction.LEADERBOARD_EXCLUSION)
    assert entry.target_id == str(user.pk)
    assert entry.data == {"excluded": True, "was": False}
    assert not board_cached()
    assert not position_cached()


def test_streak_edited_in_the_admin_is_audited_as_a_repair(employee_client):
    user = UserFactory()
    streak = Streak.objects.create(user=user, current_length=2, longest_length=4)

    response = employee_client.post(
        reverse("admin:gamification_streak_change", args=[streak.pk]),
        {
            "user": user.pk,
            "current_length": "6",
            "longest_length": "9",
            "last_active_date": "",
            "freezes_left": str(streak.freezes_left),
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    streak.refresh_from_db()
    assert (streak.current_length, streak.longest_length) == (6, 9)
    entry = AuditLog.objects.get(action=AuditAction.STREAK_REPAIR)
    assert entry.target_id == str(user.pk)
    assert entry.data["before"]["current_length"] == 2
    assert entry.data["after"]["longest_length"] == 9
    assert entry.data["via"] == "django-admin"


def test_streak_edit_in_the_admin_refuses_a_longest_shorter_than_current(employee_client):
    user = UserFactory()
    streak = Streak.objects.create(user=user, current_length=2, longest_length=4)

    response = employee_client.post(
        reverse("admin:gamification_streak_change", args=[streak.pk]),
        {
            "user": user.pk,
            "current_length": "8",
            "longest_length": "5",
            "last_active_date": "",
            "freezes_left": str(streak.freezes_left),
        },
    )

    assert response.status_code == 200
    streak.refresh_from_db()
    assert (streak.current_length, streak.longest_length) == (2, 4)
    assert not AuditLog.objects.exists()


def test_product_metadata_edited_in_the_admin_is_audited_and_invalidates_the_catalogue(
    employee_client, fill_cache, django_capture_on_commit_callbacks
):
    product = ProductFactory()
    metadata, _ = ProductMetadata.objects.get_or_create(product=product)
    metadata_cached = fill_cache(CacheType.PRODUCT_METADATA)

    with django_capture_on_commit_callbacks(execute=True):
        response = employee_client.post(
            reverse("admin:products_productmetadata_change", args=[metadata.pk]),
            {
                "product": product.pk,
                "description": "Now with a case.",
                "attributes": "{}",
                "tags": "[]",
            },
        )

    assert response.status_code == 302, response.content.decode()[:2000]
    metadata.refresh_from_db()
    assert metadata.description == "Now with a case."
    entry = AuditLog.objects.get(action=AuditAction.PRODUCT_UPDATE)
    assert entry.target_id == str(product.pk)
    assert entry.data["metadata_changes"]["description"][1] == "Now with a case."
    assert not metadata_cached()
