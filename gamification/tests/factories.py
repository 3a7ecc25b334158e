import factory
from django.utils import timezone

from accounts.tests.factories import UserFactory
from gamification.models import Achievement, ActivityKind, ActivityLog, PageView, Streak


class AchievementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Achievement

    code = factory.Sequence(lambda n: f"achievement-{n}")
    name = factory.Sequence(lambda n: f"Achievement {n}")
    description = "Do the thing."
    icon = "⭐"
    points = 5
    metric = "rankings_submitted"
    threshold = 1


class StreakFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Streak

    user = factory.SubFactory(UserFactory)


class ActivityLogFactory(factory.django.DjangoModelFactory):
    """A ledger row written directly: tests that need points must go through points_award."""

    class Meta:
        model = ActivityLog

    user = factory.SubFactory(UserFactory)
    kind = ActivityKind.RANKING_SUBMITTED
    points = 0
    local_date = factory.LazyFunction(lambda: timezone.now().date())


class PageViewFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PageView

    path = "/"
