import json
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.models import Sum

from accounts.models import User
from accounts.tests.factories import UserFactory
from gamification.models import Achievement, ActivityKind, ActivityLog, UserAchievement
from products.models import ProductMetadata
from products.tests.factories import ProductFactory
from rankings import services
from rankings.models import ProductRanking
from realtime.events import LIVE_GROUP, user_group

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 4, 1, 12, 0, tzinfo=ZoneInfo("UTC"))


def ledger_sum(user) -> int:
    return ActivityLog.objects.filter(user=user).aggregate(s=Sum("points"))["s"] or 0


def ranking_count(product) -> int:
    return ProductMetadata.objects.get(product=product).ranking_count


@pytest.fixture
def phones(db):
    return [ProductFactory(category="phones") for _ in range(12)]


def submit(user, products, *, category="phones", now=NOON):
    return services.ranking_submit(
        user=user, category=category, product_ids=[p.pk for p in products], now=now
    )


def test_submission_stores_positions_and_borda_points(user, phones):
    result = submit(user, phones[:3])
    stored = list(
        ProductRanking.objects.filter(user=user)
        .order_by("position")
        .values_list("product_id", "position", "points")
    )
    assert stored == [(phones[0].pk, 1, 10), (phones[1].pk, 2, 9), (phones[2].pk, 3, 8)]
    assert [r.position for r in result.rankings] == [1, 2, 3]


def test_first_submission_pays_submission_bonus_and_first_achievement(user, phones):
    result = submit(user, phones[:2])
    first_ranking = Achievement.objects.get(code="first-ranking")
    # 10 for the submission, 2 for a one-day streak, 10 for the first-ranking achievement.
    assert result.points_awarded == 10 + 2 + first_ranking.points
    assert [a.code for a in result.new_achievements] == ["first-ranking"]
    user.refresh_from_db()
    assert user.points == result.points_awarded == ledger_sum(user)


def test_resubmission_replaces_the_ranking_and_keeps_counts_right(user, phones):
    submit(user, phones[:3])
    submit(user, [phones[2], phones[3]])
    assert list(
        ProductRanking.objects.filter(user=user)
        .order_by("position")
        .values_list("product_id", flat=True)
    ) == [phones[2].pk, phones[3].pk]
    assert [ranking_count(p) for p in phones[:4]] == [0, 0, 1, 1]


def test_counts_add_up_over_several_users(phones):
    for _ in range(3):
        submit(UserFactory(), phones[:2])
    submit(UserFactory(), phones[1:3])
    assert [ranking_count(p) for p in phones[:4]] == [3, 4, 1, 0]


def test_a_count_already_at_zero_stays_at_zero_when_its_ranking_goes(user, phones):
    submit(user, phones[:2])
    ProductMetadata.objects.filter(product=phones[0]).update(ranking_count=0)
    submit(user, [phones[2]])
    assert [ranking_count(p) for p in phones[:3]] == [0, 0, 1]


def test_rankings_of_other_categories_are_kept(user, phones):
    tvs = [ProductFactory(category="tvs") for _ in range(2)]
    submit(user, tvs, category="tvs")
    submit(user, phones[:1])
    submit(user, phones[1:2])
    assert set(ProductRanking.objects.filter(user=user).values_list("category", flat=True)) == {
        "tvs",
        "phones",
    }
    assert ProductRanking.objects.filter(user=user, category="tvs").count() == 2


def test_product_that_changed_category_moves_with_the_new_ranking(user, phones):
    submit(user, phones[:2])
    moved = phones[1]
    moved.category = "tablets"
    moved.save()
    submit(user, [moved], category="tablets")
    assert ProductRanking.objects.get(user=user, product=moved).category == "tablets"
    assert ranking_count(moved) == 1


@pytest.mark.parametrize(
    ("product_ids", "message"),
    [
        ([], "at least one"),
        (list(range(1, 12)), "at most 10"),
        ("duplicate", "repeated"),
        ("unknown", "Unknown or inactive"),
        ("inactive", "Unknown or inactive"),
        ("foreign", "Products not in category"),
    ],
)
def test_invalid_ranking_writes_nothing(user, phones, product_ids, message):
    submit(user, phones[:2], now=datetime(2026, 3, 31, 12, tzinfo=ZoneInfo("UTC")))
    before = (
        list(ProductRanking.objects.order_by("pk").values_list("pk", "product_id")),
        ActivityLog.objects.count(),
        User.objects.get(pk=user.pk).points,
        [ranking_count(p) for p in phones],
        UserAchievement.objects.count(),
    )
    if product_ids == "duplicate":
        product_ids = [phones[3].pk, phones[3].pk]
    elif product_ids == "unknown":
        product_ids = [phones[3].pk, 10**12]
    elif product_ids == "inactive":
        phones[4].is_active = False
        phones[4].save()
        product_ids = [phones[4].pk]
    elif product_ids == "foreign":
        product_ids = [phones[3].pk, ProductFactory(category="tvs").pk]
    with pytest.raises(services.InvalidRanking, match=message):
        services.ranking_submit(user=user, category="phones", product_ids=product_ids, now=NOON)
    after = (
        list(ProductRanking.objects.order_by("pk").values_list("pk", "product_id")),
        ActivityLog.objects.count(),
        User.objects.get(pk=user.pk).points,
        [ranking_count(p) for p in phones],
        UserAchievement.objects.count(),
    )
    assert after == before


def test_submission_events_are_sent_after_commit(
    user, phones, events, django_capture_on_commit_callbacks
):
    user.display_name = "Ada"
    user.save()
    before_commit = events(LIVE_GROUP, user_group(user.pk))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submit(user, phones[:2])
    assert before_commit() == []
    live, personal = events(LIVE_GROUP), events(user_group(user.pk))
    for callback in callbacks:
        callback()
    live_events = {m["event"]: m["data"] for m in live()}
    assert live_events["ranking.submitted"] == {
        "display_name": "Ada",
        "category": "phones",
        "product_ids": [phones[0].pk, phones[1].pk],
    }
    assert "leaderboard.updated" in live_events
    received = personal()
    # One points update per submission, however many ledger entries it wrote.
    assert [m["event"] for m in received].count("points.updated") == 1
    personal_events = {m["event"]: m["data"] for m in received}
    assert personal_events["points.updated"] == {"points": User.objects.get(pk=user.pk).points}
    assert personal_events["streak.updated"]["current_length"] == 1
    assert personal_events["achievement.unlocked"]["code"] == "first-ranking"


def test_the_live_feed_shows_the_handle_never_the_email(
    phones, events, django_capture_on_commit_callbacks
):
    user = UserFactory(email="jane.doe.private@example.com", display_name="")
    live = events(LIVE_GROUP)
    with django_capture_on_commit_callbacks(execute=True):
        submit(user, phones[:1])
    [submitted] = [m["data"] for m in live() if m["event"] == "ranking.submitted"]
    assert submitted["display_name"] == user.handle
    assert "jane" not in json.dumps(submitted)


def test_an_opted_out_user_is_not_on_the_live_feed(
    phones, events, django_capture_on_commit_callbacks
):
    user = UserFactory(display_name="Hidden Ada", leaderboard_opt_out=True)
    live = events(LIVE_GROUP)
    with django_capture_on_commit_callbacks(execute=True):
        submit(user, phones[:2])
    received = live()
    assert "ranking.submitted" not in [m["event"] for m in received]
    assert "Hidden Ada" not in json.dumps(received)


def test_second_submission_same_day_sends_no_streak_update(
    user, phones, events, django_capture_on_commit_callbacks
):
    submit(user, phones[:1])
    personal = events(user_group(user.pk))
    with django_capture_on_commit_callbacks(execute=True):
        submit(user, phones[1:2])
    assert "streak.updated" not in [m["event"] for m in personal()]


def test_categories_ranked_unlocks_explorer(user):
    for category in ("a", "b", "c"):
        products = [ProductFactory(category=category)]
        result = submit(user, products, category=category)
    assert "explorer" in [a.code for a in result.new_achievements]


def test_a_category_left_by_its_only_ranked_product_no_longer_counts(user):
    moving, staying = ProductFactory(category="a"), ProductFactory(category="b")
    submit(user, [moving], category="a")
    submit(user, [staying], category="b")
    moving.category = "c"
    moving.save()
    # The user now ranks b and c: "a" went with the product's old row.
    result = submit(user, [moving], category="c")
    assert "explorer" not in [a.code for a in result.new_achievements]
    result = submit(user, [ProductFactory(category="d")], category="d")
    assert "explorer" in [a.code for a in result.new_achievements]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_by_one_user_neither_lose_nor_double_points():
    Achievement.objects.update(is_active=False)
    user = UserFactory()
    products = [ProductFactory(category="phones") for _ in range(3)]
    workers = 8
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            services.ranking_submit(
                user=user,
                category="phones",
                product_ids=[products[index % 3].pk, products[(index + 1) % 3].pk],
                now=NOON,
            )
        except BaseException as error:  # reported below, a thread cannot fail the test itself
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    user.refresh_from_db()
    submissions = ActivityLog.objects.filter(user=user, kind=ActivityKind.RANKING_SUBMITTED)
    assert submissions.count() == workers
    assert submissions.aggregate(s=Sum("points"))["s"] == min(workers, 5) * 10
    assert ActivityLog.objects.filter(user=user, kind=ActivityKind.STREAK_BONUS).count() == 1
    assert user.points == ledger_sum(user) == min(workers, 5) * 10 + 2
    assert ProductRanking.objects.filter(user=user).count() == 2
    assert sum(ranking_count(p) for p in products) == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_sharing_products_neither_deadlock_nor_lose_counts():
    products = [ProductFactory(category="phones") for _ in range(6)]
    users = [UserFactory() for _ in range(8)]
    barrier = threading.Barrier(len(users))
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            # Each user's rankings overlap everyone else's, listed in different orders.
            for rounds in range(3):
                start = (index + rounds) % len(products)
                picked = products[start:] + products[:start]
                if index % 2:
                    picked.reverse()
                submit(users[index], picked[: 3 + rounds])
        except BaseException as error:  # reported below, a thread cannot fail the test itself
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(users))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    for product in products:
        assert ranking_count(product) == ProductRanking.objects.filter(product=product).count()
