import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from adminops.models import AuditAction, AuditLog, Job, JobKind, JobStatus
from adminops.tests.factories import AchievementFactory
from config.caching import CacheType
from gamification.models import Achievement, Streak, UserAchievement
from products.models import Product
from products.tests.factories import ProductFactory
from rankings.models import ProductRanking

pytestmark = pytest.mark.django_db

# Every employee route: (method, path, body). {product}, {achievement}, {user} are ids.
ROUTES = [
    ("get", "/api/admin/products/", None),
    ("post", "/api/admin/products/", {"name": "New", "slug": "new", "category": "mice"}),
    ("get", "/api/admin/products/{product}/", None),
    ("patch", "/api/admin/products/{product}/", {"brand": "Other"}),
    ("put", "/api/admin/products/{product}/", {"name": "P", "slug": "p", "category": "mice"}),
    ("delete", "/api/admin/products/{product}/", None),
    ("get", "/api/admin/achievements/", None),
    (
        "post",
        "/api/admin/achievements/",
        {
            "code": "new-one",
            "name": "New",
            "description": "d",
            "metric": "points",
            "threshold": 5,
        },
    ),
    ("get", "/api/admin/achievements/{achievement}/", None),
    ("patch", "/api/admin/achievements/{achievement}/", {"points": 7}),
    ("delete", "/api/admin/achievements/{achievement}/", None),
    ("get", "/api/admin/users/{user}/", None),
    ("post", "/api/admin/users/{user}/points/", {"points": 5, "reason": "goodwill"}),
    ("post", "/api/admin/users/{user}/leaderboard-exclusion/", {"excluded": True}),
    (
        "post",
        "/api/admin/users/{user}/streak/",
        {"current_length": 3, "longest_length": 4, "reason": "outage"},
    ),
    ("get", "/api/admin/caches/", None),
    ("post", "/api/admin/caches/products/flush/", None),
    ("get", "/api/admin/metrics/", None),
    ("get", "/api/admin/analytics/searches/", None),
    ("get", "/api/admin/analytics/views/", None),
    ("get", "/api/admin/analytics/active-users/", None),
    ("get", "/api/admin/analytics/streaks/", None),
    ("get", "/api/admin/analytics/achievements/", None),
    ("get", "/api/admin/analytics/rankings/", None),
    ("get", "/api/admin/analytics/rank-movement/?product={product}", None),
    ("get", "/api/admin/audit-log/", None),
    ("post", "/api/tools/warm-caches/", None),
    ("post", "/api/tools/rebuild-points/", None),
    ("post", "/api/tools/rebuild-ranking-stats/", None),
    ("post", "/api/tools/reevaluate-achievements/", None),
    ("post", "/api/tools/import-products/", {"csv": "name,category\nA,mice\n"}),
    ("get", "/api/tools/jobs/", None),
    ("get", "/api/tools/jobs/{job}/", None),
]

# Routes whose employee answer needs only this app (the others: test_points.py, test_metrics.py).
EMPLOYEE_OK = {
    ("get", "/api/admin/products/"): 200,
    ("post", "/api/admin/products/"): 201,
    ("get", "/api/admin/products/{product}/"): 200,
    ("patch", "/api/admin/products/{product}/"): 200,
    ("put", "/api/admin/products/{product}/"): 200,
    ("delete", "/api/admin/products/{product}/"): 204,
    ("get", "/api/admin/achievements/"): 200,
    ("post", "/api/admin/achievements/"): 201,
    ("get", "/api/admin/achievements/{achievement}/"): 200,
    ("patch", "/api/admin/achievements/{achievement}/"): 200,
    ("delete", "/api/admin/achievements/{achievement}/"): 204,
    ("get", "/api/admin/users/{user}/"): 200,
    ("post", "/api/admin/users/{user}/leaderboard-exclusion/"): 200,
    ("post", "/api/admin/users/{user}/streak/"): 200,
    ("get", "/api/admin/caches/"): 200,
    ("post", "/api/admin/caches/products/flush/"): 204,
    ("get", "/api/admin/audit-log/"): 200,
    ("get", "/api/admin/analytics/searches/"): 200,
    ("get", "/api/admin/analytics/views/"): 200,
    ("get", "/api/admin/analytics/active-users/"): 200,
    ("get", "/api/admin/analytics/streaks/"): 200,
    ("get", "/api/admin/analytics/achievements/"): 200,
    ("get", "/api/admin/analytics/rankings/"): 200,
    ("get", "/api/admin/analytics/rank-movement/?product={product}"): 200,
    ("post", "/api/tools/warm-caches/"): 202,
    ("post", "/api/tools/import-products/"): 202,
    ("get", "/api/tools/jobs/"): 200,
    ("get", "/api/tools/jobs/{job}/"): 200,
}


@pytest.fixture
def targets(db) -> dict[str, int]:
    return {
        "product": ProductFactory().pk,
        "achievement": AchievementFactory().pk,
        "user": UserFactory().pk,
        "job": Job.objects.create(kind=JobKind.WARM_CACHES, status=JobStatus.SUCCEEDED).pk,
    }


def _call(client, method: str, path: str, body, targets):
    return getattr(client, method)(path.format(**targets), body, format="json")


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_anonymous_gets_401(api_client, targets, method, path, body):
    response = _call(api_client, method, path, body, targets)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_customer_gets_403_and_changes_nothing(user_client, targets, method, path, body):
    response = _call(user_client, method, path, body, targets)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not AuditLog.objects.exists()


@pytest.mark.parametrize(
    ("method", "path", "body"), [r for r in ROUTES if (r[0], r[1]) in EMPLOYEE_OK]
)
def test_employee_is_allowed(staff_client, targets, method, path, body):
    response = _call(staff_client, method, path, body, targets)
    assert response.status_code == EMPLOYEE_OK[(method, path)], response.content


def test_every_write_route_is_audited_with_its_actor(
    staff_client, staff_user, targets, django_capture_on_commit_callbacks
):
    writes = [r for r in ROUTES if r[0] != "get" and (r[0], r[1]) in EMPLOYEE_OK]
    for method, path, body in writes:
        before = AuditLog.objects.count()
        # A tool's job runs, and audits, once the request has committed.
        with django_capture_on_commit_callbacks(execute=True):
            _call(staff_client, method, path, body, targets)
        assert AuditLog.objects.count() == before + 1, path
        assert AuditLog.objects.latest("id").actor == staff_user


def test_product_create_with_metadata_and_update_it(staff_client):
    body = {
        "name": "Quiet Mouse",
        "slug": "quiet-mouse",
        "category": "mice",
        "metadata": {
            "description": "Silent clicks.",
            "tags": ["silent"],
            "attributes": {"dpi": 800},
        },
    }
    created = staff_client.post("/api/admin/products/", body, format="json")
    assert created.status_code == 201
    product_id = created.json()["id"]
    assert created.json()["metadata"]["attributes"] == {"dpi": 800}

    patched = staff_client.patch(
        f"/api/admin/products/{product_id}/",
        {"metadata": {"tags": ["silent", "wireless"]}},
        format="json",
    )
    assert patched.status_code == 200
    product = Product.objects.select_related("metadata").get(pk=product_id)
    assert product.metadata.tags == ["silent", "wireless"]
    assert product.metadata.description == "Silent clicks."
    entry = AuditLog.objects.filter(action=AuditAction.PRODUCT_UPDATE).get()
    assert entry.data["metadata_changes"]["tags"] == [["silent"], ["silent", "wireless"]]


def test_admin_product_list_includes_inactive_products(staff_client):
    ProductFactory(name="Retired", is_active=False)
    names = [p["name"] for p in staff_client.get("/api/admin/products/").json()["results"]]
    assert "Retired" in names


def test_product_duplicate_slug_is_400(staff_client):
    ProductFactory(slug="taken")
    response = staff_client.post(
        "/api/admin/products/", {"name": "X", "slug": "taken", "category": "c"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"]["slug"]
    assert not AuditLog.objects.exists()


def test_ranked_product_cannot_be_deleted(staff_client, user):
    product = ProductFactory()
    ProductRanking.objects.create(
        user=user, product=product, category=product.category, position=1, points=10
    )
    response = staff_client.delete(f"/api/admin/products/{product.pk}/")
    assert response.status_code == 409
    assert "is_active" in response.json()["detail"]
    assert Product.objects.filter(pk=product.pk).exists()


def test_unlocked_achievement_cannot_be_deleted(staff_client, user):
    achievement = AchievementFactory()
    UserAchievement.objects.create(user=user, achievement=achievement, unlocked_at=timezone.now())
    response = staff_client.delete(f"/api/admin/achievements/{achievement.pk}/")
    assert response.status_code == 409
    assert Achievement.objects.filter(pk=achievement.pk).exists()


def test_achievement_with_unknown_metric_is_400(staff_client):
    achievement = AchievementFactory()
    response = staff_client.patch(
        f"/api/admin/achievements/{achievement.pk}/", {"metric": "vibes"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_choice"


@pytest.mark.parametrize(
    ("path", "body", "types"),
    [
        (
            "/api/admin/products/{product}/",
            {"name": "Renamed"},
            [
                CacheType.PRODUCTS,
                CacheType.PRODUCT_METADATA,
                CacheType.RANKING_STATS,
                CacheType.HOME_STATS,
            ],
        ),
        (
            "/api/admin/achievements/{achievement}/",
            {"name": "Renamed"},
            [CacheType.ACHIEVEMENT_DEFINITIONS],
        ),
    ],
)
def test_edit_invalidates_the_cache_types_it_feeds(
    staff_client, targets, fill_cache, django_capture_on_commit_callbacks, path, body, types
):
    untouched = fill_cache(CacheType.LEADERBOARD)
    probes = [fill_cache(t) for t in types]
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.patch(path.format(**targets), body, format="json")
    assert response.status_code == 200
    assert [probe() for probe in probes] == [False] * len(types)
    assert untouched()


def test_leaderboard_exclusion_on_and_off(staff_client, user):
    on = staff_client.post(
        f"/api/admin/users/{user.pk}/leaderboard-exclusion/",
        {"excluded": True, "reason": "bot"},
        format="json",
    )
    assert on.json()["leaderboard_excluded"] is True
    off = staff_client.post(
        f"/api/admin/users/{user.pk}/leaderboard-exclusion/", {"excluded": False}, format="json"
    )
    assert off.json()["leaderboard_excluded"] is False
    user.refresh_from_db()
    assert user.leaderboard_excluded is False
    entries = AuditLog.objects.filter(action=AuditAction.LEADERBOARD_EXCLUSION).order_by("id")
    assert [(e.data["excluded"], e.reason) for e in entries] == [(True, "bot"), (False, "")]


def test_streak_repair_sets_lengths_and_audits_before_and_after(staff_client, user):
    Streak.objects.create(user=user, current_length=1, longest_length=9)
    response = staff_client.post(
        f"/api/admin/users/{user.pk}/streak/",
        {"current_length": 6, "longest_length": 9, "reason": "lost in outage"},
        format="json",
    )
    assert response.status_code == 200
    streak = Streak.objects.get(user=user)
    assert (streak.current_length, streak.longest_length) == (6, 9)
    assert streak.last_active_date is not None
    entry = AuditLog.objects.get(action=AuditAction.STREAK_REPAIR)
    assert entry.reason == "lost in outage"
    assert entry.data["before"]["current_length"] == 1
    assert entry.data["after"]["current_length"] == 6


@pytest.mark.parametrize(
    "body",
    [
        {"current_length": 5, "longest_length": 4, "reason": "x"},
        {"current_length": 5, "longest_length": 5},
        {"current_length": 5, "longest_length": 5, "reason": "   "},
        {"current_length": -1, "longest_length": 5, "reason": "x"},
    ],
)
def test_bad_streak_repair_is_400_and_changes_nothing(staff_client, user, body):
    response = staff_client.post(f"/api/admin/users/{user.pk}/streak/", body, format="json")
    assert response.status_code == 400
    assert not Streak.objects.filter(user=user).exists()
    assert not AuditLog.objects.exists()


def test_unknown_user_is_404(staff_client):
    response = staff_client.post(
        "/api/admin/users/999999/leaderboard-exclusion/", {"excluded": True}, format="json"
    )
    assert response.status_code == 404


def test_cache_stats_report_hits_misses_and_rate(staff_client, fill_cache):
    def products_row() -> dict:
        rows = {row["type"]: row for row in staff_client.get("/api/admin/caches/").json()}
        assert set(rows) == {t.value for t in CacheType}
        return rows["products"]

    before = products_row()
    probe = fill_cache(CacheType.PRODUCTS)
    probe()
    probe()
    after = products_row()
    assert (after["hits"] - before["hits"], after["misses"] - before["misses"]) == (2, 1)
    assert after["hit_rate"] == round(after["hits"] / (after["hits"] + after["misses"]), 4)


def test_cache_flush_drops_one_type_only(staff_client, fill_cache):
    flushed, kept = fill_cache(CacheType.RANKING_STATS), fill_cache(CacheType.PRODUCTS)
    response = staff_client.post("/api/admin/caches/ranking_stats/flush/")
    assert response.status_code == 204
    assert not flushed()
    assert kept()
    assert AuditLog.objects.get(action=AuditAction.CACHE_FLUSH).target_id == "ranking_stats"


def test_flush_of_unknown_cache_type_is_404(staff_client):
    assert staff_client.post("/api/admin/caches/everything/flush/").status_code == 404


def test_audit_log_filters_by_target(staff_client, targets):
    staff_client.patch(f"/api/admin/products/{targets['product']}/", {"brand": "B"}, format="json")
    staff_client.post("/api/admin/caches/products/flush/")
    results = staff_client.get(
        f"/api/admin/audit-log/?target_type=product&target_id={targets['product']}"
    ).json()["results"]
    assert [r["action"] for r in results] == ["product.update"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/admin/users/{user}/points/", {"points": 5, "reason": "goodwill"}),
        ("/api/admin/users/{user}/leaderboard-exclusion/", {"excluded": True}),
    ],
)
def test_points_and_exclusion_invalidate_the_leaderboards(
    staff_client, targets, fill_cache, django_capture_on_commit_callbacks, path, body
):
    untouched = fill_cache(CacheType.PRODUCTS)
    probes = [fill_cache(CacheType.LEADERBOARD), fill_cache(CacheType.LEADERBOARD_POSITION)]
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(path.format(**targets), body, format="json")
    assert response.status_code == 200
    assert [probe() for probe in probes] == [False, False]
    assert untouched()


def test_employees_define_levels_and_bad_levels_are_refused(staff_client):
    levels = [
        {"name": "Bronze", "threshold": 3, "points": 5},
        {"name": "Silver", "threshold": 9, "points": 15},
    ]
    body = {
        "code": "tiered",
        "name": "Tiered",
        "description": "Levels.",
        "metric": "searches_made",
        "threshold": 3,
        "points": 5,
        "levels": levels,
    }
    created = staff_client.post("/api/admin/achievements/", body, format="json")
    assert created.status_code == 201, created.content
    assert Achievement.objects.get(code="tiered").levels == levels

    falling = {**body, "code": "falling", "levels": list(reversed(levels))}
    refused = staff_client.post("/api/admin/achievements/", falling, format="json")
    assert refused.status_code == 400
    assert set(refused.json()) >= {"detail", "code"}
    assert not Achievement.objects.filter(code="falling").exists()
