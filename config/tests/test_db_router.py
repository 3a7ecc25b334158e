from django.db import connections, transaction
from django.test import override_settings

from accounts.models import User
from config.db_router import REPLICA, ReplicaRouter, replica_reads
from products.models import Product

router = ReplicaRouter()


def test_reads_go_to_default_unless_they_opt_in():
    assert router.db_for_read(Product) == "default"


def test_reads_inside_replica_reads_go_to_the_replica_and_stop_after_the_block():
    with replica_reads():
        assert router.db_for_read(Product) == REPLICA
    assert router.db_for_read(Product) == "default"


def test_replica_reads_works_as_a_decorator():
    @replica_reads()
    def leaderboard_read() -> str:
        return router.db_for_read(User)

    assert leaderboard_read() == REPLICA
    assert router.db_for_read(User) == "default"


def test_writes_always_go_to_default_even_inside_replica_reads():
    with replica_reads():
        assert router.db_for_write(Product) == "default"


def test_reads_inside_a_transaction_stay_on_default_to_see_its_own_writes(transactional_db):
    with replica_reads(), transaction.atomic():
        assert connections["default"].in_atomic_block
        assert router.db_for_read(Product) == "default"


def test_only_default_is_migrated():
    assert router.allow_migrate("default", "products")
    assert not router.allow_migrate(REPLICA, "products")


@override_settings(DATABASE_ROUTERS=["config.db_router.ReplicaRouter"])
def test_querysets_follow_the_router_once_it_is_installed():
    assert Product.objects.all().db == "default"
    with replica_reads():
        assert Product.objects.all().db == REPLICA
