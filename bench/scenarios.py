"""What each benchmark scenario requests, shared by the load generator and the cache warm-up."""

import random
from dataclasses import dataclass
from urllib.parse import urlencode

from bench.seed import CATEGORY_NAMES, TOKEN_PREFIX, Scale

# Reads favour a hot set, as real traffic does; the mix also reaches into the long tail.
HOT_PRODUCTS_PER_CATEGORY = 10
PAGE_SIZE = 20
SEARCH_TERMS = [
    "acme",
    "globex",
    "coffee",
    "headphones",
    "keyboard",
    "wonka tents",
    "shoes",
    "stark 1",
    "lamp",
    "blenders 4",
    "initech smart",
    "bottle",
]

HEALTHZ = "/healthz"
FLOOR = "/bench/floor"
FLOOR_REDIS = "/bench/floor-redis"
CATEGORIES = "/api/products/categories/"
HOME_STATS = "/api/gamification/home-stats/"
LEADERBOARD = "/api/gamification/leaderboard/"
POSITION = "/api/gamification/leaderboard/position/"
ACHIEVEMENTS = "/api/gamification/achievements/"
PRODUCTS = "/api/products/"
RANKINGS = "/api/rankings/"
RANKING_STATS = "/api/rankings/stats/"


def token_header(user_id: int) -> dict[str, str]:
    return {"Authorization": f"Token {TOKEN_PREFIX}{user_id}"}


@dataclass(frozen=True)
class Catalog:
    """The seeded catalogue, known from the scale without asking the server."""

    scale: Scale

    def category(self, index: int) -> str:
        return CATEGORY_NAMES[index]

    def products_of(self, index: int) -> list[int]:
        c = self.scale.categories
        return [k * c + index + 1 for k in range(self.scale.products_per_category)]

    def hot_products(self) -> list[int]:
        return [
            p
            for index in range(self.scale.categories)
            for p in self.products_of(index)[:HOT_PRODUCTS_PER_CATEGORY]
        ]

    def category_pages(self) -> int:
        return -(-self.scale.products_per_category // PAGE_SIZE)

    def product_list_path(self, *, index: int, page: int) -> str:
        query = {"category": self.category(index)}
        if page > 1:
            query["page"] = page
        return f"{PRODUCTS}?{urlencode(query)}"

    def ranking_stats_path(self, *, index: int) -> str:
        return f"{RANKING_STATS}?{urlencode({'category': self.category(index)})}"

    def search_path(self, term: str) -> str:
        return f"{PRODUCTS}?{urlencode({'search': term})}"

    def ranking_payload(self, rng: random.Random) -> dict:
        index = rng.randrange(self.scale.categories)
        count = rng.randint(3, 10)
        return {
            "category": self.category(index),
            "product_ids": rng.sample(self.products_of(index), count),
        }

    def read_paths(self) -> list[str]:
        """Every anonymous path the cached-reads scenario and the mix's browsing request."""
        paths = [
            HOME_STATS,
            CATEGORIES,
            f"{LEADERBOARD}?window=all",
            f"{LEADERBOARD}?window=week",
            ACHIEVEMENTS,
        ]
        for index in range(self.scale.categories):
            paths.append(self.ranking_stats_path(index=index))
            paths.extend(
                self.product_list_path(index=index, page=page)
                for page in range(1, self.category_pages() + 1)
            )
        for product_id in self.hot_products():
            paths.append(f"{PRODUCTS}{product_id}/")
            paths.append(f"{RANKING_STATS}{product_id}/")
        return paths
