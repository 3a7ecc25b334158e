"""The game's reactions to changes in the apps below it."""

from typing import Any

from accounts.models import User
from gamification.services import leaderboard_membership_sync, leaderboard_name_sync

# The user fields that decide whether a user appears on the leaderboards.
RANKING_FIELDS = frozenset({"is_active", "is_staff", "leaderboard_opt_out", "leaderboard_excluded"})
# The user fields a board shows.
NAME_FIELDS = frozenset({"display_name", "handle"})


def user_saved(
    sender: type[User],
    instance: User,
    created: bool,
    update_fields: frozenset[str] | None,
    **kwargs: Any,
) -> None:
    """Opt-out, exclusion, deactivation and staff take effect on every board at once, and so
    does a new public name."""
    if created:
        return
    if update_fields is None or NAME_FIELDS & update_fields:
        leaderboard_name_sync(user=instance)
    if update_fields is None or RANKING_FIELDS & update_fields:
        leaderboard_membership_sync(user=instance)


def user_deleted(sender: type[User], instance: User, **kwargs: Any) -> None:
    leaderboard_membership_sync(user=instance)
