from django.db import migrations

STARTER_ACHIEVEMENTS = [
    # code, name, description, icon, points, metric, threshold, hidden
    (
        "first-ranking",
        "First Ranking",
        "Submit your first ranking.",
        "🥇",
        10,
        "rankings_submitted",
        1,
        False,
    ),
    (
        "ten-rankings",
        "Seasoned Ranker",
        "Submit 10 rankings.",
        "📊",
        25,
        "rankings_submitted",
        10,
        False,
    ),
    (
        "fifty-rankings",
        "Ranking Machine",
        "Submit 50 rankings.",
        "🏭",
        100,
        "rankings_submitted",
        50,
        False,
    ),
    ("streak-3", "On a Roll", "Keep a 3-day streak.", "🔥", 15, "streak_days", 3, False),
    ("streak-7", "Week Warrior", "Keep a 7-day streak.", "📅", 50, "streak_days", 7, False),
    ("streak-30", "Unstoppable", "Keep a 30-day streak.", "🚀", 200, "streak_days", 30, False),
    (
        "explorer",
        "Explorer",
        "Rank products in 3 different categories.",
        "🧭",
        20,
        "categories_ranked",
        3,
        False,
    ),
    (
        "curious",
        "Curious Mind",
        "Search the catalogue 10 times.",
        "🔎",
        10,
        "searches_made",
        10,
        False,
    ),
    ("centurion", "Centurion", "Earn 100 points.", "💯", 0, "points", 100, False),
    (
        "connoisseur",
        "Secret Connoisseur",
        "Rank products in 10 different categories.",
        "🦉",
        75,
        "categories_ranked",
        10,
        True,
    ),
]


def create_starter_achievements(apps, schema_editor):
    Achievement = apps.get_model("gamification", "Achievement")
    for order, (code, name, description, icon, points, metric, threshold, hidden) in enumerate(
        STARTER_ACHIEVEMENTS
    ):
        Achievement.objects.update_or_create(
            code=code,
            defaults=dict(
                name=name,
                description=description,
                icon=icon,
                points=points,
                metric=metric,
                threshold=threshold,
                is_hidden=hidden,
                order=order * 10,
            ),
        )


def remove_starter_achievements(apps, schema_editor):
    Achievement = apps.get_model("gamification", "Achievement")
    Achievement.objects.filter(code__in=[row[0] for row in STARTER_ACHIEVEMENTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("gamification", "0002_performance_indexes")]

    operations = [
        migrations.RunPython(create_starter_achievements, remove_starter_achievements),
    ]
