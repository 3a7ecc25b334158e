import os
from collections.abc import Iterator

import pytest

from config.tests.faults.harness import fault_database


@pytest.fixture(scope="session")
def fault_db() -> Iterator[dict]:
    """The suite's own migrated database (next to the services pass's), dropped at the end."""
    with fault_database(os.environ["DATABASE_URL"]) as database:
        database["unused_users"] = list(database["users"])
        yield database


@pytest.fixture
def fresh_users(fault_db) -> list[list]:
    """Users no earlier fault test touched, so each test's daily payment cap starts at zero."""
    users, fault_db["unused_users"] = fault_db["unused_users"][:12], fault_db["unused_users"][12:]
    assert len(users) == 12, "seed more users for more fault tests"
    return users
