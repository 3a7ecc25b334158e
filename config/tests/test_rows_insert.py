"""`rows_insert` writes value tuples as rows in one statement: each column joined in as an
array on PostgreSQL (`INSERT ... SELECT FROM unnest`), Django's `bulk_create` elsewhere."""

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import UserFactory
from config.services import rows_insert
from gamification.models import ActivityKind, ActivityLog, UserAchievement
from gamification.tests.factories import AchievementFactory

pytestmark = pytest.mark.django_db

LEDGER = ("user_id", "kind", "points", "local_date", "data", "actor_id", "reason", "created_at")
STANDING = ("user_id", "achievement_id", "progress", "level", "unlocked_at", "updated_at")
EARLIER = datetime(2026, 3, 1, 8, 0, 0, 250_000, tzinfo=UTC)
LATER = datetime(2026, 3, 2, 23, 59, 59, 999_999, tzinfo=UTC)


@pytest.fixture(params=["native", "generic"])
def path(request, monkeypatch) -> str:
    """Each path the function has: the database's own, and on PostgreSQL the generic one too."""
    if request.param == "generic":
        if connection.vendor != "postgresql":
            pytest.skip("the embedded database takes the generic path already")
        monkeypatch.setattr(connection, "vendor", "generic")
    return request.param


def _insert(**kwargs) -> None:
    """Run rows_insert: one statement, on the path that this database (or `path`) takes."""
    with CaptureQueriesContext(connection) as queries:
        rows_insert(**kwargs)
    assert len(queries) == 1
    assert ("unnest" in queries[0]["sql"]) == (connection.vendor == "postgresql")


def test_rows_go_in_column_by_column_whatever_their_types(path):
    player, employee = UserFactory.create_batch(2)
    rows = [
        (player.pk, ActivityKind.ADJUSTMENT, -15, date(2026, 3, 1), {}, employee.pk, "Typo", LATER),
        (
            player.pk,
            ActivityKind.ACHIEVEMENT_UNLOCKED,
            40,
            date(2026, 2, 28),
            {"achievement": "café-crème", "level": 2, "ids": [1, None], "nested": {"a": True}},
            None,
            "",
            EARLIER,
        ),
        (
            employee.pk,
            ActivityKind.RANKING_SUBMITTED,
            0,
            date(2026, 1, 1),
            {"x": 1.5},
            None,
            "",
            EARLIER,
        ),
    ]

    _insert(model=ActivityLog, fields=LEDGER, rows=rows)

    stored = ActivityLog.objects.order_by("pk").values_list(*LEDGER)
    assert [tuple(row) for row in stored] == rows


def test_a_row_whose_unique_fields_exist_updates_only_the_fields_named(path):
    user, other = UserFactory.create_batch(2)
    achievement = AchievementFactory()
    held = UserAchievement.objects.create(
        user=user, achievement=achievement, progress=1, level=0, updated_at=EARLIER
    )

    _insert(
        model=UserAchievement,
        fields=STANDING,
        rows=[
            (user.pk, achievement.pk, 5, 1, LATER, LATER),
            (other.pk, achievement.pk, 2, 0, None, LATER),
        ],
        unique_fields=["user", "achievement"],
        update_fields=["progress", "level"],
    )

    stored = {
        row[0]: row[1:]
        for row in UserAchievement.objects.values_list("user_id", "pk", *STANDING[1:])
    }
    # Updated in place: same row, the fields not named as they were.
    assert stored[user.pk] == (held.pk, achievement.pk, 5, 1, None, EARLIER)
    assert stored[other.pk][1:] == (achievement.pk, 2, 0, None, LATER)


def test_no_rows_no_statement(path):
    with CaptureQueriesContext(connection) as queries:
        rows_insert(model=ActivityLog, fields=LEDGER, rows=[])
    assert len(queries) == 0
