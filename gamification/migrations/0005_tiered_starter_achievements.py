from django.db import migrations

# code, name, description, icon, metric, hidden, [(level name, threshold, points), ...]
TIERED_ACHIEVEMENTS = [
    (
        "ranker",
        "Ranker",
        "Rank categories day after day.",
        "🏅",
        "rankings_submitted",
        [("Bronze", 10, 10), ("Silver", 50, 50), ("Gold", 250, 150)],
    ),
    (
        "streak-keeper",
        "Streak Keeper",
        "Keep a streak going.",
        "🔥",
        "streak_days",
        [("Bronze", 5, 10), ("Silver", 14, 40), ("Gold", 60, 150)],
    ),
    (
        "scout",
        "Scout",
        "Search the catalogue for new things.",
        "🔭",
        "searches_made",
        [("Bronze", 5, 5), ("Silver", 25, 20), ("Gold", 100, 60)],
    ),
]


def create_tiered_achievements(apps, schema_editor):
    Achievement = apps.get_model("gamification", "Achievement")
    UserAchievement = apps.get_model("gamification", "UserAchievement")
    # Achievements unlocked before levels existed reached their one level.
    UserAchievement.objects.filter(unlocked_at__isnull=False, level=0).update(level=1)
    last = Achievement.objects.order_by("-order").values_list("order", flat=True).first() or 0
    for index, (code, name, description, icon, metric, levels) in enumerate(
        TIERED_ACHIEVEMENTS, start=1
    ):
        Achievement.objects.update_or_create(
            code=code,
            defaults=dict(
                name=name,
                description=description,
                icon=icon,
                metric=metric,
                # The first level's, for readers that know no levels.
                threshold=levels[0][1],
                points=levels[0][2],
                levels=[
                    {"name": level, "threshold": threshold, "points": points}
                    for level, threshold, points in levels
                ],
                order=last + index * 10,
            ),
        )


def remove_tiered_achievements(apps, schema_editor):
    Achievement = apps.get_model("gamification", "Achievement")
    Achievement.objects.filter(code__in=[row[0] for row in TIERED_ACHIEVEMENTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("gamification", "0004_achievement_levels")]

    operations = [
        migrations.RunPython(create_tiered_achievements, remove_tiered_achievements),
    ]
