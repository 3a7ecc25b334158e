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


def test_category_stats_leave_out_inactive_products():
    a, b = ProductFactory(category="phones"), ProductFactory(category="phones")
    rank(UserFactory(), [a, b])
    b.is_active = False
    b.save()
    assert [s["product_id"] for s in selectors.category_stats(category="phones")] == [a.pk]


def test_recent_rankings_newest_first():
    now = timezone.now()
    old = ProductRankingFactory(updated_at=now - timedelta(days=1))
    new = ProductRankingFactory(updated_at=now)
    assert list(selectors.recent_rankings(limit=2)) == [new, old]
    assert list(selectors.recent_rankings_for_user(user=old.user)) == [old]


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
        SELECT %(u)s + u, p.id, p.category, pos, 11 - pos, now(),
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
    "ranking_stats_for_product": "ranking_product_pos",
    "ranking_stats_for_category": "ranking_cat_product",
    "recent_rankings": "ranking_updated",
    "recent_rankings_for_user": "ranking_user_updated",
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
        "recent_rankings": lambda: list(selectors.recent_rankings(limit=20)),
        "recent_rankings_for_user": lambda: list(selectors.recent_rankings_for_user(user=user)),
    }
    plans = plans_of(calls[name])
    print(f"\n{name}:\n{plans}")
    assert index in plans, plans
