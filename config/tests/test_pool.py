import copy
import threading

import pytest
from django.db import connections

POOL_SIZE = 3
WORKERS = 12


@pytest.fixture
def small_pool(transactional_db):
    """The default alias with its pool rebuilt to hold at most three connections."""
    options = connections.settings["default"]["OPTIONS"]
    configured = copy.deepcopy(options["pool"])
    connections.close_all()
    connections["default"].close_pool()
    # Every thread's connection wrapper shares this settings dict, and the pool is per alias.
    options["pool"] = {"min_size": 1, "max_size": POOL_SIZE, "timeout": 10}
    yield "default"
    connections.close_all()
    connections["default"].close_pool()
    options["pool"] = configured


@pytest.mark.postgres
@pytest.mark.slow
def test_more_concurrent_requests_than_connections_all_succeed_by_waiting(small_pool):
    errors: list[BaseException] = []
    start = threading.Barrier(WORKERS)

    def request() -> None:
        try:
            start.wait(timeout=10)
            connection = connections[small_pool]
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(0.2)")
        except BaseException as error:
            errors.append(error)
        finally:
            connections[small_pool].close()

    threads = [threading.Thread(target=request) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    stats = connections[small_pool].pool.get_stats()
    assert stats["pool_max"] == POOL_SIZE
    assert stats["pool_size"] <= POOL_SIZE
    assert stats["requests_num"] == WORKERS
    # Some requests found every connection busy and queued instead of failing.
    assert stats["requests_queued"] > 0
