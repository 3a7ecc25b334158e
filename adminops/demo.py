"""A realistic, internally consistent demo data set, written with bulk inserts.

Consistent means what the game would have produced: every ranking submission has its ledger
row, streak bonuses follow the streak of local days, achievements are unlocked when their metric
crossed the threshold (with their ledger row), `User.points` is the ledger sum, a product's
`ranking_count` counts its rankings and its `view_count` its page views.
"""

import random
import zoneinfo
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import User
from gamification.models import (
    Achievement,
    ActivityKind,
    ActivityLog,
    Metric,
    PageView,
    Streak,
    UserAchievement,
)
from gamification.rules import (
    FREEZES_MAX,
    PAID_SUBMISSIONS_PER_DAY,
    STREAK_DAYS_PER_FREEZE,
    SUBMISSION_POINTS,
    streak_bonus,
)
from gamification.services import leaderboards_refresh
from products.models import Product, ProductMetadata, UserProductSearch
from products.selectors import normalize_query
from rankings.models import MAX_RANKED_PRODUCTS, ProductRanking, borda_points

BATCH_SIZE = 1000
USER_CHUNK = 1000
HISTORY_DAYS = 60
DEMO_EMPLOYEE_EMAIL = "admin@rankly.local"

# category: (brands, product lines, the noun that ends a product name)
CATALOGUE: dict[str, tuple[list[str], list[str], str]] = {
    "headphones": (
        ["Sony", "Bose", "Sennheiser", "JBL"],
        ["Aura", "Quiet", "Studio"],
        "Headphones",
    ),
    "smartphones": (["Apple", "Samsung", "Google", "Nothing"], ["Pro", "Lite", "Ultra"], "Phone"),
    "laptops": (["Lenovo", "Dell", "Apple", "Framework"], ["Air", "Book", "Carbon"], "Laptop"),
    "coffee-makers": (["DeLonghi", "Breville", "Moccamaster"], ["Barista", "Drip"], "Coffee Maker"),
    "running-shoes": (["Nike", "Asics", "Hoka", "Brooks"], ["Glide", "Tempo", "Trail"], "Runner"),
    "board-games": (["Hasbro", "Asmodee", "Ravensburger"], ["Quest", "Empire"], "Board Game"),
    "backpacks": (["Osprey", "Fjallraven", "Peak Design"], ["Daypack", "Travel"], "Backpack"),
    "smartwatches": (["Garmin", "Apple", "Fitbit", "Withings"], ["Sport", "Active"], "Watch"),
    "e-readers": (["Kindle", "Kobo", "PocketBook"], ["Paper", "Clara", "Era"], "E-reader"),
    "blenders": (["Vitamix", "Ninja", "KitchenAid"], ["Pro", "Compact"], "Blender"),
    "vacuum-cleaners": (["Dyson", "Roborock", "Miele"], ["Cyclone", "Robot"], "Vacuum"),
    "cameras": (["Canon", "Nikon", "Fujifilm", "Sony"], ["Mirrorless", "Compact"], "Camera"),
    "keyboards": (["Logitech", "Keychron", "Razer"], ["Mechanical", "Slim"], "Keyboard"),
    "monitors": (["LG", "Dell", "Samsung", "BenQ"], ["UltraSharp", "Gaming"], "Monitor"),
    "speakers": (["Sonos", "JBL", "Marshall", "Bose"], ["Mini", "Boom", "Home"], "Speaker"),
    "tents": (["MSR", "Big Agnes", "Vaude"], ["Hubba", "Ultralight"], "Tent"),
    "bicycles": (["Trek", "Specialized", "Canyon"], ["Commuter", "Gravel", "Road"], "Bike"),
    "sunscreens": (["La Roche-Posay", "Nivea", "Eucerin"], ["Sport", "Sensitive"], "Sunscreen"),
    "video-games": (["Nintendo", "Ubisoft", "FromSoftware"], ["Legends", "Odyssey"], "Game"),
    "water-bottles": (["Hydro Flask", "Stanley", "Klean Kanteen"], ["Insulated"], "Bottle"),
}
COLOURS = ["black", "white", "silver", "blue", "red", "green", "graphite"]
FIRST_NAMES = [
    "Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas", "Kira",
    "Luca", "Maya", "Nils", "Olu", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Viktor",
    "Wen", "Ximena", "Yusuf", "Zoe",
]  # fmt: skip
TIMEZONES = [
    "UTC", "Europe/London", "Europe/Berlin", "Europe/Madrid", "America/New_York",
    "America/Chicago", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Tokyo", "Asia/Kolkata",
    "Australia/Sydney", "Africa/Lagos",
]  # fmt: skip
SITE_PATHS = ["/", "/leaderboard", "/achievements", "/rankings", "/search"]


@dataclass
class DemoSeedResult:
    users: int = 0
    employees: int = 0
    products: int = 0
    rankings: int = 0
    ledger_rows: int = 0
    streaks: int = 0
    achievements_unlocked: int = 0
    page_views: int = 0
    searches: int = 0
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class _CatalogueProduct:
    id: int
    category: str
    text: str  # name, brand and category, lower case, as product_list searches them
    active: bool


def demo_data_seed(
    *,
    users: int,
    products: int,
    seed: int = 1,
    log: Callable[[str], None] = lambda message: None,
) -> DemoSeedResult:
    """Add `users` customers and `products` products with their whole history, in one transaction.

    Adds to what is there: new e-mails and slugs continue after the highest existing ids.
    Employees get no password: nothing a seed prints should let anyone into the admin.
    """
    rng = random.Random(seed)
    now = timezone.now()
    result = DemoSeedResult()
    with transaction.atomic():
        result.employees = _employees_seed()
        catalogue = _products_seed(rng=rng, count=products, now=now, log=log)
        result.products = len(catalogue)
        active_by_category: dict[str, list[int]] = {}
        for product in catalogue:
            if product.active:
                active_by_category.setdefault(product.category, []).append(product.id)
        queries = _search_vocabulary(catalogue)
        achievements = list(Achievement.objects.filter(is_active=True))
        counters = _Counters()
        first_number = (User.objects.aggregate(top=Max("id"))["top"] or 0) + 1
        for start in range(0, users, USER_CHUNK):
            size = min(USER_CHUNK, users - start)
            _users_chunk_seed(
                rng=rng,
                now=now,
                first_number=first_number + start,
                size=size,
                active_by_category=active_by_category,
                queries=queries,
                achievements=achievements,
                counters=counters,
            )
            log(f"users: {start + size}/{users}")
        _anonymous_traffic_seed(
            rng=rng, now=now, catalogue=catalogue, queries=queries, counters=counters
        )
        metadata = [
            ProductMetadata(
                product_id=product.id,
                description=_description(rng, product),
                attributes={
                    "colour": rng.choice(COLOURS),
                    "price_eur": round(rng.uniform(9, 1500), 2),
                    "weight_g": rng.randint(50, 12000),
                },
                tags=sorted({product.category, *rng.sample(COLOURS, 2)}),
                view_count=counters.views[product.id],
                ranking_count=counters.rankings[product.id],
            )
            for product in catalogue
        ]
        ProductMetadata.objects.bulk_create(metadata, batch_size=BATCH_SIZE)
        log(f"product metadata: {len(metadata)}")
    # The history went into the ledger in bulk: the period totals and the boards follow it.
    leaderboards_refresh()
    result.users = users
    result.rankings = sum(counters.rankings.values())
    result.ledger_rows = counters.ledger_rows
    result.streaks = counters.streaks
    result.achievements_unlocked = counters.unlocked
    result.page_views = counters.page_views
    result.searches = counters.searches
    return result


def _employees_seed() -> int:
    """The demo employee (a superuser) and two more employees, unless they exist already."""
    created = 0
    employees = [
        (DEMO_EMPLOYEE_EMAIL, "Demo Admin", True),
        ("support@rankly.local", "Support", False),
        ("catalogue@rankly.local", "Catalogue", False),
    ]
    for email, display_name, superuser in employees:
        if User.objects.filter(email=email).exists():
            continue
        User.objects.create_user(
            email,
            password=None,
            display_name=display_name,
            is_staff=True,
            is_superuser=superuser,
        )
        created += 1
    return created


def _products_seed(
    *, rng: random.Random, count: int, now: datetime, log: Callable[[str], None]
) -> list[_CatalogueProduct]:
    number = (Product.objects.aggregate(top=Max("id"))["top"] or 0) + 1
    categories = list(CATALOGUE)
    rows = []
    for index in range(count):
        category = categories[index % len(categories)]
        brands, lines, noun = CATALOGUE[category]
        brand = rng.choice(brands)
        name = f"{brand} {rng.choice(lines)} {noun} {rng.randint(2, 9)}{rng.choice('SXM')}"
        rows.append(
            Product(
                name=name,
                slug=f"{slugify(name)}-{number + index}",
                brand=brand,
                category=category,
                image_url=f"https://images.rankly.local/{slugify(name)}.jpg",
                # A few retired products, as a real catalogue has.
                is_active=rng.random() > 0.04,
                created_at=now - timedelta(days=rng.uniform(HISTORY_DAYS, HISTORY_DAYS * 3)),
            )
        )
    created = Product.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    log(f"products: {len(created)} in {len(categories)} categories")
    return [
        _CatalogueProduct(
            id=product.pk,
            category=product.category,
            text=f"{product.name} {product.brand} {product.category}".lower(),
            active=product.is_active,
        )
        for product in created
    ]


def _search_vocabulary(catalogue: list[_CatalogueProduct]) -> list[tuple[str, int]]:
    """Queries people type, each with the number of active products it finds."""
    words = {"wireless", "cheap", "gift"}
    for category, (brands, lines, noun) in CATALOGUE.items():
        words.update([category.replace("-", " "), noun.lower(), *map(str.lower, brands)])
        words.update(line.lower() for line in lines)
    vocabulary = []
    for word in sorted(words):
        query = normalize_query(word)
        found = sum(1 for product in catalogue if product.active and query in product.text)
        vocabulary.append((query, found))
    return vocabulary


@dataclass
class _Counters:
    rankings: Counter = field(default_factory=Counter)
    views: Counter = field(default_factory=Counter)
    ledger_rows: int = 0
    streaks: int = 0
    unlocked: int = 0
    page_views: int = 0
    searches: int = 0


@dataclass
class _Event:
    """One ledger row before it has a user id."""

    at: datetime
    local_date: date
    kind: str
    points: int
    data: dict


def _users_chunk_seed(
    *,
    rng: random.Random,
    now: datetime,
    first_number: int,
    size: int,
    active_by_category: dict[str, list[int]],
    queries: list[tuple[str, int]],
    achievements: list[Achievement],
    counters: _Counters,
) -> None:
    plans = [
        _user_plan(
            rng=rng,
            now=now,
            number=first_number + offset,
            active_by_category=active_by_category,
            queries=queries,
            achievements=achievements,
        )
        for offset in range(size)
    ]
    created = User.objects.bulk_create([plan.user for plan in plans], batch_size=BATCH_SIZE)
    rankings, streaks, user_achievements, views, searches = [], [], [], [], []
    ledger: list[ActivityLog] = []
    for user, plan in zip(created, plans, strict=True):
        for ranking in plan.rankings:
            ranking.user_id = user.pk
            counters.rankings[ranking.product_id] += 1
        rankings.extend(plan.rankings)
        ledger.extend(
            ActivityLog(
                user_id=user.pk,
                kind=event.kind,
                points=event.points,
                local_date=event.local_date,
                data=event.data,
                created_at=event.at,
            )
            for event in plan.events
        )
        if plan.streak is not None:
            plan.streak.user_id = user.pk
            streaks.append(plan.streak)
        for user_achievement in plan.user_achievements:
            user_achievement.user_id = user.pk
            counters.unlocked += user_achievement.unlocked_at is not None
        user_achievements.extend(plan.user_achievements)
        for view in plan.views:
            view.user_id = user.pk
            counters.views[view.product_id] += 1
        views.extend(plan.views)
        for search in plan.searches:
            search.user_id = user.pk
        searches.extend(plan.searches)
    ProductRanking.objects.bulk_create(rankings, batch_size=BATCH_SIZE)
    ActivityLog.objects.bulk_create(ledger, batch_size=BATCH_SIZE)
    Streak.objects.bulk_create(streaks, batch_size=BATCH_SIZE)
    UserAchievement.objects.bulk_create(user_achievements, batch_size=BATCH_SIZE)
    PageView.objects.bulk_create(views, batch_size=BATCH_SIZE)
    UserProductSearch.objects.bulk_create(searches, batch_size=BATCH_SIZE)
    counters.ledger_rows += len(ledger)
    counters.streaks += len(streaks)
    counters.page_views += len(views)
    counters.searches += len(searches)


@dataclass
class _UserPlan:
    user: User
    rankings: list[ProductRanking]
    events: list[_Event]
    streak: Streak | None
    user_achievements: list[UserAchievement]
    views: list[PageView]
    searches: list[UserProductSearch]


def _user_plan(
    *,
    rng: random.Random,
    now: datetime,
    number: int,
    active_by_category: dict[str, list[int]],
    queries: list[tuple[str, int]],
    achievements: list[Achievement],
) -> _UserPlan:
    name = rng.choice(FIRST_NAMES)
    zone_name = rng.choice(TIMEZONES)
    zone = zoneinfo.ZoneInfo(zone_name)
    joined = now - timedelta(days=rng.uniform(1, HISTORY_DAYS), seconds=rng.randint(0, 86399))
    user = User(
        email=f"{name.lower()}.{number}@example.com",
        display_name=f"{name} {chr(65 + number % 26)}.",
        timezone=zone_name,
        password=make_password(None),
        leaderboard_opt_out=rng.random() < 0.03,
        date_joined=joined,
    )

    categories = [category for category, ids in active_by_category.items() if ids]
    # Nothing to rank in an empty catalogue, so no submissions either.
    submissions = _submission_times(rng=rng, now=now, joined=joined) if categories else []
    rng.shuffle(categories)
    ranked = categories[: min(len(categories), len(submissions), rng.choice([1, 1, 2, 2, 3, 5]))]
    # Each ranked category is first submitted once, then the rest are re-rankings.
    submission_categories = ranked + [rng.choice(ranked) for _ in submissions[len(ranked) :]]
    events, rankings = [], []
    timeline: list[tuple[datetime, date, Metric, int | None]] = []
    seen_categories: set[str] = set()
    first_at: dict[str, datetime] = {}
    last_at: dict[str, datetime] = {}
    for at, category in zip(submissions, submission_categories, strict=True):
        first_at.setdefault(category, at)
        last_at[category] = at
    for category in ranked:
        ids = active_by_category[category]
        chosen = rng.sample(ids, rng.randint(1, min(MAX_RANKED_PRODUCTS, len(ids))))
        for position, product_id in enumerate(chosen, start=1):
            rankings.append(
                ProductRanking(
                    product_id=product_id,
                    category=category,
                    position=position,
                    points=borda_points(position),
                    created_at=first_at[category],
                    updated_at=last_at[category],
                )
            )

    paid_per_day: Counter = Counter()
    streak_length = longest = 0
    last_day: date | None = None
    for at, category in zip(submissions, submission_categories, strict=True):
        day = at.astimezone(zone).date()
        paid = paid_per_day[day] < PAID_SUBMISSIONS_PER_DAY
        paid_per_day[day] += 1
        events.append(
            _Event(
                at=at,
                local_date=day,
                kind=ActivityKind.RANKING_SUBMITTED,
                points=SUBMISSION_POINTS if paid else 0,
                data={"category": category},
            )
        )
        timeline.append((at, day, Metric.RANKINGS_SUBMITTED, None))
        if category not in seen_categories:
            seen_categories.add(category)
            timeline.append((at, day, Metric.CATEGORIES_RANKED, None))
        if day != last_day:
            streak_length = streak_length + 1 if last_day == day - timedelta(days=1) else 1
            longest = max(longest, streak_length)
            last_day = day
            bonus = streak_bonus(streak_length=streak_length)
            events.append(
                _Event(at, day, ActivityKind.STREAK_BONUS, bonus, {"streak": streak_length})
            )
            timeline.append((at, day, Metric.STREAK_DAYS, streak_length))

    streak = None
    if last_day is not None:
        streak = Streak(
            current_length=streak_length,
            longest_length=longest,
            last_active_date=last_day,
            freezes_left=min(FREEZES_MAX, streak_length // STREAK_DAYS_PER_FREEZE),
            updated_at=submissions[-1],
        )

    searches = []
    for _ in range(rng.choice([0, 0, 1, 2, 3, 5, 8, 12])):
        query, found = rng.choice(queries)
        at = joined + (now - joined) * rng.random()
        searches.append(UserProductSearch(query=query, result_count=found, created_at=at))
    searches.sort(key=lambda search: search.created_at)
    for search in searches:
        day = search.created_at.astimezone(zone).date()
        timeline.append((search.created_at, day, Metric.SEARCHES_MADE, None))

    views = []
    for _ in range(rng.randint(0, 6)):
        at = joined + (now - joined) * rng.random()
        if rankings and rng.random() < 0.8:
            product_id = rng.choice(rankings).product_id
            views.append(PageView(path=f"/products/{product_id}", product_id=product_id))
        else:
            views.append(PageView(path=rng.choice(SITE_PATHS)))
        views[-1].created_at = at

    unlocked_events, user_achievements = _achievements_reached(
        timeline=timeline, achievements=achievements, events=events
    )
    events.extend(unlocked_events)
    user.points = sum(event.points for event in events)
    return _UserPlan(
        user=user,
        rankings=rankings,
        events=events,
        streak=streak,
        user_achievements=user_achievements,
        views=views,
        searches=searches,
    )


def _submission_times(*, rng: random.Random, now: datetime, joined: datetime) -> list[datetime]:
    """When a user submitted rankings: runs of consecutive days, one to three a day."""
    if rng.random() < 0.2:
        return []  # Some people only browse.
    days_member = max(1, (now - joined).days)
    times = []
    day = rng.randint(0, days_member - 1)
    for _ in range(rng.choice([1, 1, 2, 3])):
        for _ in range(rng.choice([1, 1, 2, 3, 4, 8])):
            if day > days_member - 1 or day < 0:
                break
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                at = now - timedelta(days=days_member - 1 - day, seconds=rng.randint(60, 86000))
                times.append(max(joined + timedelta(seconds=rng.randint(1, 600)), at))
            day += 1
        day += rng.randint(2, 9)
    return sorted(t for t in times if t < now)


def _achievements_reached(
    *, timeline: list[tuple], achievements: list[Achievement], events: list[_Event]
) -> tuple[list[_Event], list[UserAchievement]]:
    """Unlock each achievement when its metric crossed the threshold; progress for the rest."""
    timeline.sort(key=lambda entry: entry[0])
    reached: dict[int, tuple[datetime, date]] = {}
    progress: Counter = Counter()
    for at, day, metric, value in timeline:
        if metric == Metric.STREAK_DAYS:
            progress[metric] = max(progress[metric], value)
        else:
            progress[metric] += 1
        for achievement in achievements:
            if (
                achievement.metric == metric
                and achievement.pk not in reached
                and progress[metric] >= achievement.threshold
            ):
                reached[achievement.pk] = (at, day)
    unlocked = [
        _Event(
            at=at,
            local_date=day,
            kind=ActivityKind.ACHIEVEMENT_UNLOCKED,
            points=achievement.points,
            data={"achievement": achievement.code},
        )
        for achievement in achievements
        if achievement.pk in reached
        for at, day in [reached[achievement.pk]]
    ]
    # Points achievements: walk the ledger in time order, including earlier unlocks' points.
    ledger = sorted([*events, *unlocked], key=lambda event: event.at)
    total = 0
    by_threshold = sorted(
        (a for a in achievements if a.metric == Metric.POINTS), key=lambda a: a.threshold
    )
    for event in ledger:
        total += event.points
        while by_threshold and total >= by_threshold[0].threshold:
            achievement = by_threshold.pop(0)
            reached[achievement.pk] = (event.at, event.local_date)
            unlocked.append(
                _Event(
                    at=event.at,
                    local_date=event.local_date,
                    kind=ActivityKind.ACHIEVEMENT_UNLOCKED,
                    points=achievement.points,
                    data={"achievement": achievement.code},
                )
            )
            total += achievement.points
    progress[Metric.POINTS] = total
    user_achievements = []
    for achievement in achievements:
        value = progress[achievement.metric]
        if achievement.pk in reached:
            at, _ = reached[achievement.pk]
            user_achievements.append(
                UserAchievement(
                    achievement=achievement,
                    progress=achievement.threshold,
                    unlocked_at=at,
                    updated_at=at,
                )
            )
        elif value > 0:
            user_achievements.append(
                UserAchievement(achievement=achievement, progress=value, updated_at=timeline[-1][0])
            )
    return unlocked, user_achievements


def _anonymous_traffic_seed(
    *,
    rng: random.Random,
    now: datetime,
    catalogue: list[_CatalogueProduct],
    queries: list[tuple[str, int]],
    counters: _Counters,
) -> None:
    """Visitors who are not signed in: page views with a session key, searches without a user."""
    active = [product.id for product in catalogue if product.active]
    views, searches = [], []
    for _ in range(len(catalogue) * 3):
        at = now - timedelta(seconds=rng.randint(0, HISTORY_DAYS * 86400))
        session_key = f"{rng.getrandbits(128):032x}"
        if active and rng.random() < 0.7:
            product_id = rng.choice(active)
            counters.views[product_id] += 1
            view = PageView(path=f"/products/{product_id}", product_id=product_id)
        else:
            view = PageView(path=rng.choice(SITE_PATHS))
        view.session_key, view.created_at = session_key, at
        views.append(view)
    for _ in range(len(catalogue)):
        query, found = rng.choice(queries)
        at = now - timedelta(seconds=rng.randint(0, HISTORY_DAYS * 86400))
        searches.append(UserProductSearch(query=query, result_count=found, created_at=at))
    PageView.objects.bulk_create(views, batch_size=BATCH_SIZE)
    UserProductSearch.objects.bulk_create(searches, batch_size=BATCH_SIZE)
    counters.page_views += len(views)
    counters.searches += len(searches)


def _description(rng: random.Random, product: _CatalogueProduct) -> str:
    noun = CATALOGUE[product.category][2].lower()
    quality = rng.choice(["well built", "light", "quiet", "long-lasting", "great value"])
    return f"A {quality} {noun} that reviewers keep coming back to."
