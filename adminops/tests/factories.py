import factory

from gamification.models import Achievement, Metric


class AchievementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Achievement

    code = factory.Sequence(lambda n: f"test-achievement-{n}")
    name = factory.Sequence(lambda n: f"Test Achievement {n}")
    description = "Reach the threshold."
    points = 5
    metric = Metric.RANKINGS_SUBMITTED
    threshold = 3
