"""Tools and repairs that run through the game's services (points ledger, stats, achievements)."""

import io

import pytest
from django.core.management import call_command

from accounts.models import User
from accounts.tests.factories import UserFactory
from adminops.models import AuditAction, AuditLog
from adminops.tests.factories import AchievementFactory
from gamification.models import ActivityKind, ActivityLog, Metric, UserAchievement

pytestmark = pytest.mark.django_db


def test_points_adjustment_writes_a_ledger_entry_naming_the_employee(
    staff_client, staff_user, user
):
    response = staff_client.post(
        f"/api/admin/users/{user.pk}/points/",
        {"points": 25, "reason": "contest prize"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["points"] == 25
    entry = ActivityLog.objects.get(user=user)
    assert (entry.kind, entry.points, entry.actor, entry.reason) == (
        ActivityKind.ADJUSTMENT,
        25,
        staff_user,
        "contest prize",
    )
    user.refresh_from_db()
    assert user.points == 25
    audit = AuditLog.objects.get(action=AuditAction.POINTS_ADJUST)
    assert (audit.actor, audit.target_id, audit.reason) == (
        staff_user,
        str(user.pk),
        "contest prize",
    )


def test_negative_adjustment_takes_points_away(staff_client, user):
    staff_client.post(
        f"/api/admin/users/{user.pk}/points/", {"points": 30, "reason": "a"}, format="json"
    )
    response = staff_client.post(
        f"/api/admin/users/{user.pk}/points/", {"points": -12, "reason": "abuse"}, format="json"
    )
    assert response.json()["points"] == 18


@pytest.mark.parametrize(
    "body",
    [{"points": 10}, {"points": 10, "reason": ""}, {"points": 0, "reason": "x"}, {"reason": "x"}],
)
def test_adjustment_without_reason_or_points_is_400_and_writes_nothing(staff_client, user, body):
    response = staff_client.post(f"/api/admin/users/{user.pk}/points/", body, format="json")
    assert response.status_code == 400
    assert not ActivityLog.objects.exists()
    assert not AuditLog.objects.exists()


def test_rebuild_points_fixes_mismatches_and_is_idempotent(staff_client, run_tool, user):
    staff_client.post(
        f"/api/admin/users/{user.pk}/points/", {"points": 40, "reason": "a"}, format="json"
    )
    other = UserFactory()
    User.objects.filter(pk=user.pk).update(points=999)
    User.objects.filter(pk=other.pk).update(points=5)

    first = run_tool("rebuild-points")
    assert first["status"] == "succeeded"
    assert first["report"]["mismatches_fixed"] == 2
    assert first["progress"] == {"done": 3, "total": 3}
    user.refresh_from_db()
    other.refresh_from_db()
    assert (user.points, other.points) == (40, 0)

    second = run_tool("rebuild-points")["report"]
    assert second["mismatches_fixed"] == 0
    assert AuditLog.objects.filter(action=AuditAction.POINTS_REBUILD).count() == 2


def test_rebuild_points_command_prints_progress(user):
    User.objects.filter(pk=user.pk).update(points=7)
    out = io.StringIO()
    call_command("rebuild_points", stdout=out)
    assert "1/1 users checked" in out.getvalue()
    assert "1 mismatches fixed" in out.getvalue()
    user.refresh_from_db()
    assert user.points == 0


def test_rebuild_ranking_stats_runs_twice_with_the_same_result(run_tool):
    first = run_tool("rebuild-ranking-stats")
    second = run_tool("rebuild-ranking-stats")
    assert first["status"] == second["status"] == "succeeded"
    assert first["report"] == second["report"]
    out = io.StringIO()
    call_command("rebuild_ranking_stats", stdout=out)
    assert "Ranking stats rebuilt" in out.getvalue()


def test_reevaluate_achievements_awards_what_history_earned_once(staff_client, run_tool, user):
    staff_client.post(
        f"/api/admin/users/{user.pk}/points/", {"points": 40, "reason": "a"}, format="json"
    )
    # Defined after the points were earned, so only re-evaluation can award it.
    achievement = AchievementFactory(metric=Metric.POINTS, threshold=30, points=5)

    first = run_tool("reevaluate-achievements")
    assert first["report"]["result"]["achievements_unlocked"] == 1
    assert UserAchievement.objects.filter(
        user=user, achievement=achievement, unlocked_at__isnull=False
    ).exists()
    ledger = ActivityLog.objects.count()

    second = run_tool("reevaluate-achievements")
    assert second["report"]["result"]["achievements_unlocked"] == 0
    call_command("reevaluate_achievements", stdout=io.StringIO())
    unlocked = UserAchievement.objects.filter(achievement=achievement, unlocked_at__isnull=False)
    assert list(unlocked.values_list("user", flat=True)) == [user.pk]
    assert ActivityLog.objects.count() == ledger
    assert AuditLog.objects.filter(action=AuditAction.ACHIEVEMENTS_REEVALUATE).count() == 3


def test_tools_page_rebuilds_points(client, staff_user, user, django_capture_on_commit_callbacks):
    User.objects.filter(pk=user.pk).update(points=3)
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/dashboard/tools/", {"tool": "rebuild_points"})
    assert "mismatches_fixed 1" in client.get("/admin/dashboard/tools/").content.decode()
    user.refresh_from_db()
    assert user.points == 0
