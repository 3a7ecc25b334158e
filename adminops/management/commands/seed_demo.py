import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from adminops.demo import DEMO_EMPLOYEE_EMAIL, demo_data_seed
from products.models import Product


class Command(BaseCommand):
    help = (
        "Fill the database with a realistic demo: customers, employees, products with metadata, "
        "rankings, the points ledger, streaks, achievements, page views and searches."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=2000, help="customers to add")
        parser.add_argument("--products", type=int, default=300, help="products to add")
        parser.add_argument(
            "--seed", type=int, default=1, help="random seed (same seed, same data)"
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing when the catalogue already has products",
        )

    def handle(self, *args, users: int, products: int, seed: int, if_empty: bool, **options):
        if users < 0 or products < 0:
            raise CommandError("--users and --products cannot be negative.")
        if if_empty and Product.objects.exists():
            self.stdout.write("The catalogue has products already; nothing seeded.")
            return
        started = time.perf_counter()
        result = demo_data_seed(
            users=users,
            products=products,
            seed=seed,
            log=self.stdout.write,
        )
        elapsed = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded in {elapsed:.1f} s: {result.users} customers, {result.employees} new "
                f"employees, {result.products} products, {result.rankings} rankings, "
                f"{result.ledger_rows} ledger rows, {result.streaks} streaks, "
                f"{result.achievements_unlocked} achievements unlocked, "
                f"{result.page_views} page views, {result.searches} searches."
            )
        )
        self.stdout.write(
            f"Employees ({DEMO_EMPLOYEE_EMAIL} and two more) have no password; make yourself "
            "an admin with `python manage.py createsuperuser`."
        )
