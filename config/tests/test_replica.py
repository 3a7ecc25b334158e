"""With a read replica, the lag-tolerant selectors read it; writes and read-your-writes never do.

The replica is a real second database: a copy of the primary taken when the test says so, so
whatever the primary gains afterwards is the replica's lag. On SQLite it is a second file; in
the services pass a second PostgreSQL database on the same server.
"""

import sqlite3
from contextlib import closing
from datetime import timedelta

import psycopg
import pytest
from django.db import connections, transaction
from django.db.utils import load_backend
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from config.db_router import REPLICA
from gamification.models import PageView
from gamification.selectors import home_stats, top_paths
from products.models import Product, UserProductSearch
from products.selectors import popular_searches, product_list
from products.tests.factories import ProductFactory
from rankings.models import ProductRanking
from rankings.selectors import (
    category_stats,
    ranking_stats_for_category,
    ranking_stats_for_product,
)
from rankings.services import ranking_submit


def _on_server(primary, sql: str) -> None:
    """A statement on the PostgreSQL server outside any database (CREATE/DROP DATABASE)."""
    params = primary.settings_dict
    with psycopg.connect(
        host=params["HOST"] or "127.0.0.1",
        port=params["PORT"] or 5432,
        user=params["USER"],
        password=params["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as server:
        server.execute(sql)


@pytest.fixture
def replica(transactional_db, tmp_path):
    """Call it to copy the primary into a `replica` alias; the router is installed meanwhile."""
    primary = connections["default"]
    copies: list[str] = []
    made = []

    def take_copy() -> None:
        copied = dict(primary.settings_dict)
        if primary.vendor == "sqlite":
            primary.ensure_connection()
            path = tmp_path / "replica.sqlite3"
            with closing(sqlite3.connect(path)) as target:
                primary.connection.backup(target)
            copied["NAME"] = str(path)
        else:
            name = f"{primary.settings_dict['NAME']}_replica"
            # A template database must have no session open on it: give the pool's back.
            primary.close()
            primary.close_pool()
            _on_server(primary, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            _on_server(primary, f'CREATE DATABASE "{name}" TEMPLATE "{copied["NAME"]}"')
            copies.append(name)
            copied["NAME"] = name
        # Outside settings.DATABASES, as Django's test case allows a connection made on the fly.
        connections[REPLICA] = load_backend(copied["ENGINE"]).DatabaseWrapper(copied, REPLICA)
        made.append(connections[REPLICA])

    with override_settings(DATABASE_ROUTERS=["config.db_router.ReplicaRouter"]):
        yield take_copy
    for connection in made:
        connection.close()
        if connection.vendor == "postgresql":
            connection.close_pool()
        del connections[REPLICA]
    for name in copies:
        _on_server(primary, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rank(user, products) -> None:
    ranking_submit(user=user, category="phones", product_ids=[p.pk for p in products])


@pytest.fixture
def phones():
    return [ProductFactory(category="phones") for _ in range(2)]


def test_ranking_statistics_and_analytics_read_the_replica_and_show_its_lag(replica, phones):
    rank(UserFactory(), phones)
    UserProductSearch.objects.create(query="camera", result_count=3)
    PageView.objects.create(path="/a")
    replica()
    # Written after the copy: on the primary only, as if the replica had not caught up yet.
    rank(UserFactory(), [phones[1]])
    UserProductSearch.objects.create(query="camera", result_count=3)
    PageView.objects.create(path="/a")
    since = timezone.now() - timedelta(days=1)

    assert ProductRanking.objects.filter(product=phones[1]).count() == 2
    assert ranking_stats_for_product(product_id=phones[1].pk)["rankers"] == 1
    assert [
        (row["product_id"], row["rankers"]) for row in ranking_stats_for_category(category="phones")
    ] == [(phones[0].pk, 1), (phones[1].pk, 1)]
    assert popular_searches(since=since) == [{"query": "camera", "searches": 1}]
    assert top_paths(since=since) == [{"path": "/a", "views": 1}]


def test_reads_whose_cache_a_write_invalidates_stay_on_the_primary(replica, phones):
    rank(UserFactory(), phones)
    replica()
    Product.objects.filter(pk=phones[0].pk).update(name="Renamed after the copy")
    added = ProductFactory(category="phones")
    UserFactory()

    assert added in product_list(category="phones")
    first = category_stats(category="phones")[0]
    assert (first["product_id"], first["name"]) == (phones[0].pk, "Renamed after the copy")
    stats = home_stats()
    assert (stats["products"], stats["users"]) == (3, 2)


def test_reads_inside_a_write_transaction_stay_on_the_primary(replica, phones):
    replica()
    rank(UserFactory(), phones)
    with transaction.atomic():
        assert ranking_stats_for_product(product_id=phones[0].pk)["rankers"] == 1
    assert ranking_stats_for_product(product_id=phones[0].pk)["rankers"] == 0


def test_a_submission_writes_the_primary_and_its_author_reads_it_back_at_once(replica, phones):
    user = UserFactory()
    replica()
    client = APIClient()
    client.force_authenticate(user)

    response = client.post(
        "/api/rankings/", {"category": "phones", "product_ids": [phones[0].pk]}, format="json"
    )

    assert response.status_code == 201
    assert ProductRanking.objects.using(REPLICA).filter(user=user).count() == 0
    mine = client.get("/api/rankings/mine/").json()
    assert [row["product"] for row in mine] == [phones[0].pk]
    # The statistics endpoint tolerates lag: it answers from the replica's copy.
    stats = client.get(f"/api/rankings/stats/{phones[0].pk}/").json()
    assert stats["rankers"] == 0


@pytest.mark.postgres
def test_in_the_services_pass_the_replica_is_a_second_postgresql_database(replica, phones):
    replica()
    rank(UserFactory(), phones)
    replica_db = connections[REPLICA]
    assert replica_db.vendor == "postgresql"
    assert replica_db.settings_dict["NAME"] != connections["default"].settings_dict["NAME"]
    assert ranking_stats_for_product(product_id=phones[0].pk)["rankers"] == 0
