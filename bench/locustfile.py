"""Locust users, one class per scenario; `bench.run` starts Locust headless on one of them.

Every user sends its next request as soon as the last one is answered (closed loop, no think
time), so a scenario measures what one server process can sustain at that concurrency.
Signed-in users carry the token the seeder issued to bench user <n>.
"""

import itertools
import json
import os
import random
import time

import gevent
from locust import FastHttpUser, constant, task

from bench import scenarios
from bench.scenarios import Catalog
from bench.seed import FULL, Scale

CATALOG = Catalog(
    Scale(**json.loads(os.environ["BENCH_SCALE"])) if "BENCH_SCALE" in os.environ else FULL
)
_user_numbers = itertools.count(1)


class BenchUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        number = next(_user_numbers)
        self.rng = random.Random(number)
        self.user_id = (number - 1) % CATALOG.scale.token_users + 1
        self.auth = scenarios.token_header(self.user_id)

    def get(self, path: str, *, name: str, signed_in: bool = False) -> None:
        self.client.get(path, name=name, headers=self.auth if signed_in else None)

    def submit_ranking(self) -> None:
        self.client.post(
            scenarios.RANKINGS,
            json=CATALOG.ranking_payload(self.rng),
            headers=self.auth,
            name=scenarios.RANKINGS,
        )

    def product_detail(self, product_id: int) -> None:
        self.get(f"{scenarios.PRODUCTS}{product_id}/", name="/api/products/[id]/")

    def product_stats(self, product_id: int) -> None:
        self.get(f"{scenarios.RANKING_STATS}{product_id}/", name="/api/rankings/stats/[id]/")

    def category_page(self, *, page: int = 1) -> None:
        index = self.rng.randrange(CATALOG.scale.categories)
        path = CATALOG.product_list_path(index=index, page=page)
        self.get(path, name="/api/products/?category=")

    def category_stats(self) -> None:
        index = self.rng.randrange(CATALOG.scale.categories)
        self.get(CATALOG.ranking_stats_path(index=index), name="/api/rankings/stats/?category=")


class Healthz(BenchUser):
    @task
    def healthz(self) -> None:
        self.get(scenarios.HEALTHZ, name=scenarios.HEALTHZ)


class Floor(BenchUser):
    """A response the server writes before Django (bench/asgi.py): the server's own cost."""

    @task
    def floor(self) -> None:
        self.get(scenarios.FLOOR, name=scenarios.FLOOR)


class FloorRedis(BenchUser):
    """The floor after one Redis read on the event loop (bench/asgi.py): the least an answer
    read from Redis costs."""

    @task
    def floor_redis(self) -> None:
        self.get(scenarios.FLOOR_REDIS, name=scenarios.FLOOR_REDIS)


class PublicReads(BenchUser):
    """The cached reads anyone may make, signed out, each task equally often."""

    abstract = True

    def on_start(self) -> None:
        super().on_start()
        self.hot = CATALOG.hot_products()

    @task
    def home_stats(self) -> None:
        self.get(scenarios.HOME_STATS, name=scenarios.HOME_STATS)

    @task
    def leaderboard(self) -> None:
        window = self.rng.choice(["all", "week"])
        self.get(f"{scenarios.LEADERBOARD}?window={window}", name=scenarios.LEADERBOARD)

    @task
    def achievements(self) -> None:
        self.get(scenarios.ACHIEVEMENTS, name=scenarios.ACHIEVEMENTS)

    @task
    def products_list(self) -> None:
        self.category_page()

    @task
    def products_detail(self) -> None:
        self.product_detail(self.rng.choice(self.hot))

    @task
    def ranking_stats(self) -> None:
        if self.rng.random() < 0.5:
            self.category_stats()
        else:
            self.product_stats(self.rng.choice(self.hot))


class CachedReads(PublicReads):
    """The read endpoints the caches serve, equally often, after a warm-up: the public ones
    and the signed-in user's leaderboard position."""

    @task
    def leaderboard_position(self) -> None:
        self.get(scenarios.POSITION, name=scenarios.POSITION, signed_in=True)


class AnonymousReads(PublicReads):
    """The cached reads anyone may make, signed out, equally often, after a warm-up."""

    @task
    def categories(self) -> None:
        self.get(scenarios.CATEGORIES, name=scenarios.CATEGORIES)


class Mix(BenchUser):
    """Customers: 70 % browse, 20 % search, 10 % signed-in ranking submissions (by request)."""

    def on_start(self) -> None:
        super().on_start()
        self.hot = CATALOG.hot_products()
        self.every_product = range(1, CATALOG.scale.products + 1)

    def any_product(self) -> int:
        # Nine views in ten go to the hot set; the rest anywhere in the catalogue.
        if self.rng.random() < 0.9:
            return self.rng.choice(self.hot)
        return self.rng.choice(self.every_product)

    @task(20)
    def browse_category(self) -> None:
        self.category_page(page=self.rng.randint(1, CATALOG.category_pages()))

    @task(25)
    def browse_product(self) -> None:
        self.product_detail(self.any_product())

    @task(10)
    def browse_home(self) -> None:
        self.get(scenarios.HOME_STATS, name=scenarios.HOME_STATS)

    @task(5)
    def browse_leaderboard(self) -> None:
        self.get(f"{scenarios.LEADERBOARD}?window=all", name=scenarios.LEADERBOARD)

    @task(5)
    def browse_category_stats(self) -> None:
        self.category_stats()

    @task(5)
    def browse_product_stats(self) -> None:
        self.product_stats(self.any_product())

    @task(20)
    def search(self) -> None:
        term = self.rng.choice(scenarios.SEARCH_TERMS)
        self.get(CATALOG.search_path(term), name="/api/products/?search=")

    @task(10)
    def submit(self) -> None:
        self.submit_ranking()


class Writes(BenchUser):
    """Signed-in users submitting rankings, each with its own token."""

    @task
    def submit(self) -> None:
        self.submit_ranking()


class WritesPaced(Writes):
    """The same users each submitting once a period (2 s: 16 a second from 32 users).

    Each user starts at its own moment within the first period, as real users do: started
    together, the 32 would submit in lockstep, one burst of 32 every period. The schedule
    counts from that moment: Locust's constant_pacing would count the start delay as the first
    task's time and so bring every user back into the same burst.
    """

    def on_start(self) -> None:
        super().on_start()
        self.period = float(os.environ.get("BENCH_PACING_SECONDS", "2"))
        gevent.sleep(self.rng.uniform(0, self.period))
        self.next_start = time.monotonic()

    def wait_time(self) -> float:
        self.next_start += self.period
        return max(0.0, self.next_start - time.monotonic())
