from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


class Metric(models.TextChoices):
    RANKINGS_SUBMITTED = "rankings_submitted", "Rankings submitted"
    STREAK_DAYS = "streak_days", "Streak days"
    CATEGORIES_RANKED = "categories_ranked", "Categories ranked"
    SEARCHES_MADE = "searches_made", "Searches made"
    POINTS = "points", "Points"


@dataclass(frozen=True)
class Level:
    """One level of an achievement: reached at `threshold`, paying `points`."""

    number: int
    name: str
    threshold: int
    points: int


def validate_levels(value: object) -> None:
    """Levels are a list of {"name", "threshold", "points"} with thresholds rising."""
    if not isinstance(value, list):
        raise ValidationError("levels must be a list.")
    previous = 0
    for index, level in enumerate(value, start=1):
        if not isinstance(level, dict) or set(level) != {"name", "threshold", "points"}:
            raise ValidationError(f"level {index} needs exactly name, threshold and points.")
        name, threshold, points = level["name"], level["threshold"], level["points"]
        if not isinstance(name, str) or not name.strip() or len(name) > 50:
            raise ValidationError(f"level {index} needs a name of 1 to 50 characters.")
        if type(threshold) is not int or type(points) is not int or points < 0:
            raise ValidationError(f"level {index}: threshold and points are whole numbers.")
        if threshold <= previous:
            raise ValidationError("level thresholds must be positive and rise level by level.")
        previous = threshold


class Achievement(models.Model):
    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300)
    icon = models.CharField(max_length=50, blank=True)
    points = models.PositiveIntegerField(default=0)
    metric = models.CharField(max_length=30, choices=Metric.choices)
    threshold = models.PositiveIntegerField()
    levels = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_levels],
        help_text='Tiers, e.g. [{"name": "Bronze", "threshold": 10, "points": 10}, ...]: each '
        "paid once, in order. With levels, threshold and points are not used.",
    )
    is_hidden = models.BooleanField(default=False, help_text="Masked until unlocked.")
    is_active = models.BooleanField(default=True)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def tiers(self) -> list[Level]:
        """The levels to reach in order; an achievement without levels has one."""
        if not self.levels:
            return [Level(number=1, name="", threshold=self.threshold, points=self.points)]
        return [
            Level(number=n, name=lv["name"], threshold=lv["threshold"], points=lv["points"])
            for n, lv in enumerate(self.levels, start=1)
        ]


class UserAchievement(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="user_achievements",
        db_index=False,
    )
    achievement = models.ForeignKey(
        Achievement, on_delete=models.CASCADE, related_name="user_achievements", db_index=False
    )
    progress = models.PositiveIntegerField(default=0)
    # A database default too: bulk loaders insert rows with SQL of their own.
    level = models.PositiveSmallIntegerField(
        default=0, db_default=0, help_text="How many levels are reached."
    )
    unlocked_at = models.DateTimeField(
        null=True, blank=True, help_text="When the first level was reached."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "achievement"], name="userach_user_ach_unique"),
        ]
        indexes = [
            # achievements_for_user: a user's unlocked achievements, newest first.
            models.Index(
                fields=["user", "-unlocked_at"],
                name="userach_user_unlocked",
                condition=models.Q(unlocked_at__isnull=False),
            ),
            # achievements_in_progress: a user's locked achievements, closest to unlocking first.
            models.Index(
                fields=["user", "-progress"],
                name="userach_user_progress",
                condition=models.Q(unlocked_at__isnull=True),
            ),
            # achievement_unlock_counts: how many users unlocked each achievement.
            models.Index(
                fields=["achievement", "unlocked_at"],
                name="userach_ach_unlocked",
                condition=models.Q(unlocked_at__isnull=False),
            ),
            # home stats: achievements unlocked since a time (today).
            models.Index(
                fields=["unlocked_at"],
                name="userach_unlocked",
                condition=models.Q(unlocked_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.achievement_id}"


class Streak(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="streak"
    )
    current_length = models.PositiveIntegerField(default=0)
    longest_length = models.PositiveIntegerField(default=0)
    last_active_date = models.DateField(null=True, blank=True, help_text="In the user's zone.")
    freezes_left = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # home stats: streaks still alive (active yesterday or today).
            models.Index(
                fields=["last_active_date"],
                name="streak_last_active",
                condition=models.Q(current_length__gt=0),
            ),
            # top_streaks: the longest streaks still running.
            models.Index(
                fields=["-current_length", "user"],
                name="streak_current",
                condition=models.Q(current_length__gt=0),
            ),
            # streak_records: the longest streaks ever (and re-evaluation of streak achievements).
            models.Index(fields=["-longest_length", "user"], name="streak_longest"),
            # streak_freezes_held: live streaks by the freezes they hold (index-only).
            models.Index(
                fields=["last_active_date", "freezes_left"],
                name="streak_freezes",
                condition=models.Q(freezes_left__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.current_length} days"


class ActivityKind(models.TextChoices):
    RANKING_SUBMITTED = "ranking_submitted", "Ranking submitted"
    STREAK_BONUS = "streak_bonus", "Streak bonus"
    ACHIEVEMENT_UNLOCKED = "achievement_unlocked", "Achievement unlocked"
    ADJUSTMENT = "adjustment", "Adjustment by an employee"


class ActivityLog(models.Model):
    """Append-only points ledger: `User.points` is the sum of a user's rows."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="activity", db_index=False
    )
    kind = models.CharField(max_length=30, choices=ActivityKind.choices)
    points = models.IntegerField(default=0)
    local_date = models.DateField(help_text="The day in the user's zone when it happened.")
    data = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The employee who made an adjustment.",
    )
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "activity log entry"
        verbose_name_plural = "activity log"
        indexes = [
            # activity_for_user: a user's ledger, newest first.
            models.Index(fields=["user", "-created_at"], name="activity_user_created"),
            # paid_submissions_on: a user's paid submissions on one local day (the daily cap).
            models.Index(fields=["user", "kind", "local_date"], name="activity_user_kind_day"),
            # home stats: submissions (or any kind) since a time.
            models.Index(fields=["kind", "created_at"], name="activity_kind_created"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} {self.points:+d}"


class PeriodWindow(models.TextChoices):
    DAY = "day", "UTC day"
    WEEK = "week", "ISO week (from Monday, UTC)"
    MONTH = "month", "UTC month"


class PeriodPoints(models.Model):
    """A user's points in one day, week or month (UTC): the sum of their ledger rows in it.

    Written in the same transaction as each ledger row (and set back to the ledger's sums by
    the rebuilds), so the period boards read from SQL walk this table's index instead of
    summing the ledger.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    period = models.CharField(max_length=5, choices=PeriodWindow.choices)
    start = models.DateTimeField(help_text="When the period starts (UTC midnight).")
    points = models.IntegerField(default=0)
    reached_at = models.DateTimeField(
        null=True, help_text="The latest scoring ledger row of the period, in whole seconds."
    )

    class Meta:
        verbose_name_plural = "period points"
        constraints = [
            # The writes' upsert and one user's points in a period.
            models.UniqueConstraint(fields=["user", "period", "start"], name="periodpoints_user"),
        ]
        indexes = [
            # The SQL period boards: pages, counts and neighbours in board order.
            models.Index(
                fields=["period", "start", "-points", "reached_at", "user"],
                name="periodpoints_board",
                condition=models.Q(points__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.period} {self.start:%Y-%m-%d}: {self.points}"


class PageView(models.Model):
    path = models.CharField(max_length=500)
    product = models.ForeignKey(
        "products.Product",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="page_views",
        db_index=False,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="page_views",
        db_index=False,
    )
    session_key = models.CharField(max_length=40, blank=True)
    referrer = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # page_views_per_day of one product.
            models.Index(fields=["product", "created_at"], name="pageview_product_created"),
            # page_views_per_day and top_paths: every view by time, with its path (index-only).
            models.Index(fields=["created_at", "path"], name="pageview_created_path"),
            # products_viewed_most: views per product over a window (index-only).
            models.Index(
                fields=["created_at", "product"],
                name="pageview_created_product",
                condition=models.Q(product__isnull=False),
            ),
            # active_users_per_day and active_users_per_week: signed-in viewers (index-only).
            models.Index(
                fields=["created_at", "user"],
                name="pageview_created_user",
                condition=models.Q(user__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.path


class BoardLadder(models.Model):
    """A board's ladder as last counted: its size and, at about 64 scores, how many players
    have at least that score (gamification.selectors.Ladder).

    Written every minute by the beat and by any read that had to count it, so that the SQL
    fallback reads one row instead of walking the whole board.
    """

    label = models.CharField(max_length=20, unique=True, help_text="The board: all, week:<start>…")
    total = models.IntegerField()
    rungs = models.JSONField(help_text="[points, players with at least those points], descending.")
    counted_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.label}: {self.total} players at {self.counted_at:%H:%M:%S}"


# --- Daily roll-ups of the page views (gamification.services.page_views_rollup_day) ---------


class PageViewDay(models.Model):
    """A closed UTC day whose page views are rolled up: its views and its signed-in viewers."""

    day = models.DateField(primary_key=True)
    views = models.PositiveIntegerField()
    users = models.PositiveIntegerField()
    rolled_at = models.DateTimeField()

    def __str__(self) -> str:
        return str(self.day)


class ActiveUsersWeek(models.Model):
    """Distinct signed-in viewers of a closed ISO week (from Monday, UTC): distinct users do not
    add up from days, so a week is counted from its raw rows once it is over."""

    week = models.DateField(primary_key=True)
    users = models.PositiveIntegerField()
    rolled_at = models.DateTimeField()

    def __str__(self) -> str:
        return str(self.week)


class ProductViewDay(models.Model):
    """Views of a product's page on a UTC day."""

    day = models.DateField()
    product = models.ForeignKey("products.Product", on_delete=models.CASCADE, db_index=False)
    views = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "product"], name="productviewday_day_product"),
        ]
        indexes = [
            # page_views_per_day of one product: its days, not every product's.
            models.Index(fields=["product", "day"], name="productviewday_product_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.product_id}"


class PathViewDay(models.Model):
    """Views of a path on a UTC day."""

    day = models.DateField()
    path = models.CharField(max_length=500)
    views = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "path"], name="pathviewday_day_path"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.path}"


class PageViewMonth(models.Model):
    """A closed month (its first day) whose every day is rolled up, summed into
    ProductViewMonth and PathViewMonth: a year is then read from a dozen rows per key."""

    month = models.DateField(primary_key=True)
    rolled_at = models.DateTimeField()

    def __str__(self) -> str:
        return str(self.month)


class ProductViewMonth(models.Model):
    """ProductViewDay summed over a closed month."""

    month = models.DateField()
    product = models.ForeignKey("products.Product", on_delete=models.CASCADE, db_index=False)
    views = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["month", "product"], name="productviewmonth_month_product"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.month} {self.product_id}"


class PathViewMonth(models.Model):
    """PathViewDay summed over a closed month."""

    month = models.DateField()
    path = models.CharField(max_length=500)
    views = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["month", "path"], name="pathviewmonth_month_path"),
        ]

    def __str__(self) -> str:
        return f"{self.month} {self.path}"
