"""The game's numbers, defined once: the services play by them, the demo and bench seeds obey them.

Plain constants, no Django import, so the set-based bench seeder can read them too. The starter
achievements are data, written by migration 0003_starter_achievements.
"""

# A ranking submission earns points, up to a number of paid submissions per local day.
SUBMISSION_POINTS = 10
PAID_SUBMISSIONS_PER_DAY = 5
# The first submission of a day adds a bonus growing with the streak, up to a cap.
STREAK_BONUS_PER_DAY = 2
STREAK_BONUS_MAX = 20
# Every so many streak days earn a freeze, which covers one missed day; only so many are kept.
STREAK_DAYS_PER_FREEZE = 7
FREEZES_MAX = 2


def streak_bonus(*, streak_length: int) -> int:
    """The bonus of the first submission on day `streak_length` of a streak."""
    return min(STREAK_BONUS_PER_DAY * streak_length, STREAK_BONUS_MAX)
