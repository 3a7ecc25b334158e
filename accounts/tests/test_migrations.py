"""The data migrations bring existing users to the new rules: canonical addresses, handles."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _latest_schema_afterwards():
    """Later tests need every migration applied, also those after the targets here."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def _migrate(target: str):
    executor = MigrationExecutor(connection)
    executor.migrate([("accounts", target)])
    executor.loader.build_graph()
    return executor.loader.project_state([("accounts", target)]).apps


def test_existing_users_get_canonical_addresses_and_handles():
    old = _migrate("0004_login_failure")
    User = old.get_model("accounts", "User")
    User.objects.create(email="ada@bücher.example", password="!")
    User.objects.create(email="twin@café.example", password="!")
    User.objects.create(email="twin@xn--caf-dma.example", password="!")

    new = _migrate("0006_user_handle")
    User = new.get_model("accounts", "User")

    emails = set(User.objects.values_list("email", flat=True))
    assert "ada@xn--bcher-kva.example" in emails
    # A rewrite that would collide with another account is left for an employee to merge.
    assert {"twin@café.example", "twin@xn--caf-dma.example"} <= emails
    handles = list(User.objects.values_list("handle", flat=True))
    assert all(handle.startswith("player-") for handle in handles)
    assert len(set(handles)) == len(handles)
