from django.conf import settings
from django.db import models
from django.utils import timezone


class Product(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, unique=True)
    brand = models.CharField(max_length=100, blank=True)
    category = models.CharField(max_length=100)
    image_url = models.URLField(max_length=500, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            # product_list and product_categories: active products of a category, by name.
            models.Index(fields=["category", "is_active", "name"], name="product_category_name"),
        ]

    def __str__(self) -> str:
        return self.name


class ProductMetadata(models.Model):
    product = models.OneToOneField(Product, on_delete=models.CASCADE, related_name="metadata")
    description = models.TextField(blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    view_count = models.PositiveBigIntegerField(default=0)
    ranking_count = models.PositiveIntegerField(
        default=0, help_text="How many users currently rank this product."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "product metadata"
        indexes = [
            # products_top_ranked (home stats): most ranked products first.
            models.Index(fields=["-ranking_count", "product"], name="pmeta_ranking_count"),
            # products_most_viewed: most viewed products first.
            models.Index(fields=["-view_count", "product"], name="pmeta_view_count"),
        ]

    def __str__(self) -> str:
        return f"metadata of {self.product_id}"


class UserProductSearch(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="product_searches",
        db_index=False,
    )
    query = models.CharField(max_length=200)
    result_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "user product searches"
        indexes = [
            # searches_for_user: a user's searches, newest first (and the searches_made count).
            models.Index(fields=["user", "-created_at"], name="search_user_created"),
            # popular_searches: the most searched queries over a window (index-only).
            models.Index(fields=["created_at", "query"], name="search_created_query"),
            # searches_without_results: the queries that found nothing over a window.
            models.Index(
                fields=["created_at", "query"],
                name="search_zero_created",
                condition=models.Q(result_count=0),
            ),
        ]

    def __str__(self) -> str:
        return self.query


# --- Daily roll-ups of the searches (products.services.searches_rollup_day) ------------------


class SearchDay(models.Model):
    """A closed UTC day whose searches are rolled up into SearchQueryDay, with its totals."""

    day = models.DateField(primary_key=True)
    searches = models.PositiveIntegerField()
    without_results = models.PositiveIntegerField()
    rolled_at = models.DateTimeField()

    def __str__(self) -> str:
        return str(self.day)


class SearchQueryDay(models.Model):
    """How often a normalised query was searched on a UTC day, and how often it found nothing."""

    day = models.DateField()
    query = models.CharField(max_length=200)
    searches = models.PositiveIntegerField()
    without_results = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "query"], name="searchqueryday_day_query"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.query}"


class SearchMonth(models.Model):
    """A closed month (its first day) whose every day is rolled up, summed into
    SearchQueryMonth: a year is then read from a dozen rows per query."""

    month = models.DateField(primary_key=True)
    rolled_at = models.DateTimeField()

    def __str__(self) -> str:
        return str(self.month)


class SearchQueryMonth(models.Model):
    """SearchQueryDay summed over a closed month."""

    month = models.DateField()
    query = models.CharField(max_length=200)
    searches = models.PositiveIntegerField()
    without_results = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["month", "query"], name="searchquerymonth_month_query"),
        ]

    def __str__(self) -> str:
        return f"{self.month} {self.query}"
