from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from gamification.tests.bulk import analyze, bulk_products, bulk_users, plans_of, sql
from products.tests.factories import ProductFactory
from rankings import selectors, services
from rankings.tests.factories import ProductRankingFactory

pytestmark = pytest.mark.django_db


def rank(user, products, category="phones"):
    services.ranking_submit(user=user, category=category, product_ids=[p.pk for p in products])


def test_rankings_for_user_in_order_of_category_then_position():
    user = UserFactory()
    phones = [ProductFactory(category="phones") for _ in range(3)]
    tvs = [ProductFactory(category="tvs") for _ in range(2)]
    rank(user, [phones[2], phones[0]])
    rank(user, tvs, category="tvs")
    mine = [(r.category, r.position, r.product_id) for r in selectors.rankings_for_user(user=user)]
    assert mine == [
        ("phones", 1, phones[2].pk),
        ("phones", 2, phones[0].pk),
        ("tvs", 1, tvs[0].pk),
        ("tvs", 2, tvs[1].pk),
    ]
    assert selectors.categories_ranked_count(user=user) == 2


def test_category_stats_order_by_borda_score_with_rankers_and_first_places():
    a, b, c = (ProductFactory(category="phones") for _ in range(3))
    rank(UserFactory(), [a, b, c])  # a 10, b 9, c 8
    rank(UserFactory(), [b, a])  # b 10, a 9
    rank(UserFactory(), [b])  # b 10
    stats = selectors.ranking_stats_for_category(category="phones")
    assert [(s["product_id"], s["score"], s["rankers"], s["first_place_votes"]) for s in stats] == [
        (b.pk, 29, 3, 2),
        (a.pk, 19, 2, 1),
        (c.pk, 8, 1, 0),
    ]
    assert [s["average_position"] for s in stats] == [1.33, 1.5, 3.0]


def test_product_stats_of_an_unranked_product_are_empty():
    product = ProductFactory()
    assert selectors.ranking_stats_for_product(product_id=product.pk) == {
        "product_id": product.pk,
        "score": 0,
        "rankers": 0,
        "average_position": None,
        "first_place_votes": 0,
    }


def test_product_stats_match_category_stats():
    a, b = ProductFactory(category="phones"), ProductFactory(category="phones")
    rank(UserFactory(), [a, b])
    rank(UserFactory(), [b, a])
    rank(UserFactory(), [a])
    by_product = selectors.ranking_stats_for_product(product_id=a.pk)
    from_category = next(
        s
        for s in selectors.ranking_stats_for_category(category="phones")
        if s["product_id"] == a.pk
    )
    assert by_product == from_category
    assert (by_product["rankers"], by_product["first_place_votes"]) == (3, 2)


def test_stats_of_several_products_match_each_product_alone():
    a, b, unranked = (ProductFactory(category="phones") for _ in range(3))
    rank(UserFactory(), [a, b])
    rank(UserFactory(), [b, a])
    rank(UserFactory(), [a])
    stats = selectors.ranking_stats_for_products(product_ids=[b.pk, unranked.pk, a.pk, b.pk])
    assert stats == [
        selectors.ranking_stats_for_product(product_id=p.pk)
        for p in sorted([a, b, unranked], key=lambda p: p.pk)
    ]
    assert [(s["rankers"], s["first_place_votes"]) for s in stats] == [(3, 2), (2, 1), (0, 0)]
    assert selectors.ranking_stats_for_products(product_ids=[]) == []


def test_category_stats_leave_out_inactive_products():
    a, b = ProductFactory(category="phones"), ProductFactory(category="phones")
    rank(UserFactory(), [a, b])
    b.is_active = False
    b.save()
    assert [s["product_id"] for s in selectors.category_stats(category="phones")] == [a.pk]


def test_rankings_per_category_per_day_count_users_by_submission_day():
    now = timezone.now().replace(hour=12)
    yesterday = now - timedelta(days=1)
    phones = [ProductFactory(category="phones") for _ in range(2)]
    tv = ProductFactory(category="tvs")
    first, second = UserFactory(), UserFactory()
    for user, when in [(first, yesterday), (second, now)]:
        for position, product in enumerate(phones, start=1):
            ProductRankingFactory(user=user, product=product, position=position, created_at=when)
    ProductRankingFactory(user=first, product=tv, created_at=now)
    ProductRankingFactory(product=tv, created_at=now - timedelta(days=40))

    rows = selectors.rankings_per_category_per_day(since=now - timedelta(days=7))

    assert rows == [
        {"day": yesterday.date(), "category": "phones", "rankings": 1},
        {"day": now.date(), "category": "phones", "rankings": 1},
        {"day": now.date(), "category": "tvs", "rankings": 1},
    ]
    assert selectors.rankings_per_category_per_day(
        since=now - timedelta(days=7), category="tvs"
    ) == [{"day": now.date(), "category": "tvs", "rankings": 1}]


def test_product_rank_movement_averages_the_positions_of_each_day():
    now = timezone.now().replace(hour=12)
    product = ProductFactory(category="phones")
    for position, days_ago in [(1, 2), (3, 2), (2, 0), (9, 30)]:
        ProductRankingFactory(
            product=product, position=position, created_at=now - timedelta(days=days_ago)
        )
    ProductRankingFactory(position=10, created_at=now)

    rows = selectors.product_rank_movement(product_id=product.pk, since=now - timedelta(days=7))

    assert rows == [
        {"day": (now - timedelta(days=2)).date(), "average_position": 2.0, "rankers": 2},
        {"day": now.date(), "average_position": 2.0, "rankers": 1},
    ]


# --- Query plans on PostgreSQL -------------------------------------------------------------------


@pytest.fixture
def ranking_rows(db):
    """1,000 users each ranking 10 of 20 products in 3 of 50 categories: 30,000 rows."""
    first_user = bulk_users(1000)
    first_product = bulk_products(1000, categories=50)
    sql(
        """
        INSERT INTO rankings_productranking (user_id, product_id, category, position, points,
            created_at, updated_at)
        SELECT %(u)s + u, p.id, p.category, pos, 11 - pos,
            now() - ((u * 30 + c * 10 + pos) * interval '1 minute'),
            now() - ((u * 30 + c * 10 + pos) * interval '1 minute')
        FROM generate_series(0, 999) AS u,
             generate_series(0, 2) AS c,
             generate_series(1, 10) AS pos,
             LATERAL (
                 SELECT id, category FROM products_product
                 WHERE id = %(p)s + ((u + c * 17) %% 50) + 50 * ((u + pos) %% 20)
             ) AS p
        """,
        {"u": first_user, "p": first_product},
    )
    analyze("rankings_productranking", "products_product", "accounts_user")
    return first_user, first_product


SELECTOR_INDEXES = {
    "rankings_for_user": "ranking_user_cat_pos",
    "ranking_stats_for_product": "ranking_product_created",
    "ranking_stats_for_category": "ranking_cat_product",
    "rankings_per_category_per_day": "ranking_created_cat",
    "rankings_per_category_per_day_of_one": "ranking_cat_created",
    "product_rank_movement": "ranking_product_created",
}


@pytest.mark.postgres
@pytest.mark.parametrize(("name", "index"), SELECTOR_INDEXES.items())
def test_selector_query_uses_its_index(ranking_rows, name, index):
    from accounts.models import User

    first_user, first_product = ranking_rows
    user = User.objects.get(pk=first_user + 7)
    assert sql("SELECT count(*) FROM rankings_productranking")[0][0] == 30_000
    calls = {
        "rankings_for_user": lambda: list(
            selectors.rankings_for_user(user=user, category="category-7")
        ),
        "ranking_stats_for_product": lambda: selectors.ranking_stats_for_product(
            product_id=first_product + 7
        ),
        "ranking_stats_for_category": lambda: selectors.ranking_stats_for_category(
            category="category-7"
        ),
        # A day of the 20 the rows span: a year of real data holds more days than that.
        "rankings_per_category_per_day": lambda: selectors.rankings_per_category_per_day(
            since=timezone.now() - timedelta(days=1)
        ),
        "rankings_per_category_per_day_of_one": lambda: selectors.rankings_per_category_per_day(
            since=timezone.now() - timedelta(days=1), category="category-7"
        ),
        "product_rank_movement": lambda: selectors.product_rank_movement(
            product_id=first_product + 7, since=timezone.now() - timedelta(days=7)
        ),
    }
    plans = plans_of(calls[name])
    print(f"\n{name}:\n{plans}")
    assert index in plans, plans
