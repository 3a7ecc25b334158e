import pytest
from django.contrib import admin
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.admin import exclude_from_leaderboards, include_in_leaderboards
from accounts.models import User
from accounts.tests.factories import UserFactory
from adminops.models import AuditAction, AuditLog, Job
from adminops.tests.factories import AchievementFactory
from config.caching import CacheType
from products.models import Product
from products.tests.factories import ProductFactory
from rankings.models import ProductRanking

pytestmark = pytest.mark.django_db


@pytest.fixture
def employee(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(employee) -> Client:
    client = Client()
    client.force_login(employee)
    return client


def test_admin_index_links_to_dashboard_and_tools(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert 'href="/admin/dashboard/"' in page
    assert 'href="/admin/dashboard/tools/"' in page


@pytest.mark.parametrize(
    "path", ["/admin/dashboard/", "/admin/dashboard/snapshot/", "/admin/dashboard/tools/"]
)
def test_employee_pages_send_customers_to_the_admin_sign_in(client, user, path):
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_dashboard_page_has_a_chart_for_each_figure(admin_client):
    page = admin_client.get("/admin/dashboard/").content.decode()
    for chart in (
        "request_rate",
        "latency",
        "instance_p99",
        "error_rate",
        "cache_hit_rate",
        "open_websockets",
    ):
        assert f'data-chart="{chart}"' in page
    assert 'id="ops-online"' in page
    assert 'data-poll-seconds="5"' in page
    assert 'href="/admin/dashboard/analytics/"' in page
    assert 'data-snapshot-url="/admin/dashboard/snapshot/"' in page
    assert "adminops/dashboard.js" in page


def test_achievement_edit_in_admin_is_audited_and_invalidates_definitions(
    admin_client, employee, fill_cache, django_capture_on_commit_callbacks
):
    achievement = AchievementFactory(name="Old", points=5)
    still_cached = fill_cache(CacheType.ACHIEVEMENT_DEFINITIONS)
    form = {
        "code": achievement.code,
        "name": "New name",
        "description": achievement.description,
        "icon": "",
        "points": "15",
        "metric": achievement.metric,
        "threshold": str(achievement.threshold),
        "is_active": "on",
        "order": "0",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/gamification/achievement/{achievement.pk}/change/", form
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    achievement.refresh_from_db()
    assert (achievement.name, achievement.points) == ("New name", 15)
    entry = AuditLog.objects.get(action=AuditAction.ACHIEVEMENT_UPDATE)
    assert entry.actor == employee
    assert set(entry.data["changed"]) == {"name", "points"}
    assert not still_cached()


def test_product_added_in_admin_gets_metadata_and_an_audit(admin_client):
    form = {
        "name": "Desk Mat",
        "slug": "desk-mat",
        "brand": "",
        "category": "desk",
        "image_url": "",
        "is_active": "on",
        "metadata-TOTAL_FORMS": "1",
        "metadata-INITIAL_FORMS": "0",
        "metadata-MIN_NUM_FORMS": "0",
        "metadata-MAX_NUM_FORMS": "1",
        "metadata-0-description": "Soft.",
        "metadata-0-attributes": "{}",
        "metadata-0-tags": "[]",
    }
    response = admin_client.post("/admin/products/product/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    product = Product.objects.select_related("metadata").get(slug="desk-mat")
    assert product.metadata.description == "Soft."
    assert AuditLog.objects.get(action=AuditAction.PRODUCT_CREATE).target_id == str(product.pk)


def test_audit_log_is_read_only_in_admin(admin_client, employee):
    entry = AuditLog.objects.create(actor=employee, action=AuditAction.CACHE_FLUSH)
    assert admin_client.get("/admin/adminops/auditlog/").status_code == 200
    assert admin_client.get("/admin/adminops/auditlog/add/").status_code == 403
    change = admin_client.get(f"/admin/adminops/auditlog/{entry.pk}/change/")
    assert change.status_code == 200
    assert 'name="reason"' not in change.content.decode()
    assert admin_client.post(f"/admin/adminops/auditlog/{entry.pk}/delete/").status_code == 403


def test_audit_changelist_queries_do_not_grow_with_rows(
    admin_client, employee, django_assert_max_num_queries
):
    actors = UserFactory.create_batch(3, is_staff=True)
    for actor in [*actors, employee]:
        AuditLog.objects.create(actor=actor, action=AuditAction.CACHE_FLUSH)
    admin_client.get("/admin/adminops/auditlog/")
    for actor in actors:
        AuditLog.objects.create(actor=actor, action=AuditAction.CACHE_WARM)
    with django_assert_max_num_queries(12):
        assert admin_client.get("/admin/adminops/auditlog/").status_code == 200


def test_tools_page_queues_a_tool_and_lists_its_report(
    admin_client, employee, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        queued = admin_client.post("/admin/dashboard/tools/", {"tool": "warm_caches"}, follow=True)
    assert "Warm every cache type: job" in queued.content.decode()
    assert "queued (queued now)" in queued.content.decode()
    page = admin_client.get("/admin/dashboard/tools/").content.decode()
    assert "succeeded" in page
    assert "total " in page
    assert AuditLog.objects.get(action=AuditAction.CACHE_WARM).actor == employee


def test_tools_page_imports_a_csv(admin_client, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("p.csv", b"name,category\nMat,desk\n,desk\n", "text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/dashboard/tools/", {"tool": "import_products", "file": upload})
    page = admin_client.get("/admin/dashboard/tools/").content.decode()
    assert "created 1" in page
    assert "Import products from CSV" in page
    assert Product.objects.filter(slug="mat").exists()


def test_tools_page_refuses_an_unreadable_csv_before_queueing(admin_client):
    upload = SimpleUploadedFile("p.csv", b"name,colour\nMat,red\n", "text/csv")
    response = admin_client.post(
        "/admin/dashboard/tools/", {"tool": "import_products", "file": upload}, follow=True
    )
    assert "Import refused: Unknown columns: colour" in response.content.decode()
    assert not Job.objects.exists()


def test_tools_page_rejects_an_unknown_tool(admin_client):
    response = admin_client.post("/admin/dashboard/tools/", {"tool": "drop_tables"}, follow=True)
    assert "Unknown tool." in response.content.decode()
    assert not AuditLog.objects.exists()


def test_ranked_product_offers_no_delete_in_admin(admin_client, user):
    product = ProductFactory()
    ProductRanking.objects.create(
        user=user, product=product, category=product.category, position=1, points=10
    )
    response = admin_client.post(f"/admin/products/product/{product.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Product.objects.filter(pk=product.pk).exists()
    unranked = ProductFactory()
    response = admin_client.post(f"/admin/products/product/{unranked.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Product.objects.filter(pk=unranked.pk).exists()
    assert AuditLog.objects.get(action=AuditAction.PRODUCT_DELETE).target_id == str(unranked.pk)


def test_warm_caches_action_on_the_product_changelist(admin_client, employee):
    product = ProductFactory()
    response = admin_client.post(
        "/admin/products/product/",
        {"action": "warm_caches", "_selected_action": [product.pk]},
        follow=True,
    )
    assert "Caches warmed" in response.content.decode()
    assert AuditLog.objects.get(action=AuditAction.CACHE_WARM).actor == employee


def test_leaderboard_actions_for_a_user_changelist(rf, employee):
    customers = UserFactory.create_batch(2)
    request = rf.post("/admin/accounts/user/")
    request.user = employee
    request.session = {}
    request._messages = FallbackStorage(request)
    user_admin = admin.ModelAdmin(User, admin.site)
    queryset = User.objects.filter(pk__in=[c.pk for c in customers])

    exclude_from_leaderboards(user_admin, request, queryset)
    assert set(queryset.values_list("leaderboard_excluded", flat=True)) == {True}
    include_in_leaderboards(user_admin, request, queryset)
    assert set(queryset.values_list("leaderboard_excluded", flat=True)) == {False}
    assert AuditLog.objects.filter(action=AuditAction.LEADERBOARD_EXCLUSION).count() == 4
