"""Reads of the accounts app."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from datetime import date as datetime_date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User, UserSession


def sessions_for_user(*, user: User) -> QuerySet[UserSession]:
    """A user's signed-in devices, most recently seen first (index usersession_user_seen)."""
    return UserSession.objects.filter(user=user).order_by("-last_seen_at")


def current_user_session_id(*, request: HttpRequest, auth: object) -> int | None:
    """The UserSession of this request: the token's, or the one stored in the cookie session."""
    if isinstance(auth, UserSession):
        return auth.pk
    return request.session.get("user_session_id")


def users_seen_since(*, minutes: int) -> int:
    """Distinct users seen in the last minutes (index usersession_seen_user)."""
    since = timezone.now() - timedelta(minutes=minutes)
    return UserSession.objects.filter(last_seen_at__gte=since).values("user_id").distinct().count()


# --- The user's day ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DayRule:
    """How a user's moments map to calendar dates: a zone and the local hour a day starts."""

    timezone: str
    day_start_hour: int

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def date_at(self, moment: datetime) -> date:
        """The date a moment belongs to: 01:30 with a day start of 3 is still the day before."""
        wall = moment.astimezone(self.zone).replace(tzinfo=None)
        return (wall - timedelta(hours=self.day_start_hour)).date()

    def day_end(self, day: date) -> datetime:
        """The first moment of the day after `day`. A start hour that a DST jump skips maps to
        the moment of the jump (fold 0 reads the wall time with the offset before it)."""
        wall = datetime.combine(day + timedelta(days=1), time(self.day_start_hour))
        return wall.replace(tzinfo=self.zone).astimezone(UTC)


@dataclass(frozen=True)
class UserDay:
    """The rule in force for a user at a moment, that moment's date, the date the last change
    of rule skipped, and a change still to come."""

    rule: DayRule
    date: datetime_date
    skipped_date: datetime_date | None
    pending_rule: DayRule | None
    pending_from: datetime | None


def user_day_rule(*, user: User) -> DayRule:
    """The rule stored as in force (a pending rule may have come due since: see user_day)."""
    return DayRule(timezone=user.timezone, day_start_hour=user.day_start_hour)


def user_pending_rule(*, user: User) -> DayRule | None:
    if user.pending_from is None:
        return None
    return DayRule(
        timezone=user.pending_timezone or user.timezone,
        day_start_hour=user.day_start_hour
        if user.pending_day_start_hour is None
        else user.pending_day_start_hour,
    )


def day_change_skipped_date(*, old: DayRule, new: DayRule, at: datetime) -> date | None:
    """The date a change of rule at `at` jumps over, if any.

    Zones span 26 hours and a day start 4 more, under two days: a change skips one date at most.
    """
    last_old = old.date_at(at - timedelta(microseconds=1))
    first_new = new.date_at(at)
    return first_new - timedelta(days=1) if first_new > last_old + timedelta(days=1) else None


def user_day(*, user: User, now: datetime | None = None) -> UserDay:
    """The user's day at `now`, with a pending rule put in force once its time has come."""
    now = now or timezone.now()
    rule, skipped = user_day_rule(user=user), user.skipped_date
    pending = user_pending_rule(user=user)
    if pending is not None and user.pending_from is not None and user.pending_from <= now:
        skipped = day_change_skipped_date(old=rule, new=pending, at=user.pending_from) or skipped
        rule, pending = pending, None
    return UserDay(
        rule=rule,
        date=rule.date_at(now),
        skipped_date=skipped,
        pending_rule=pending,
        pending_from=user.pending_from if pending is not None else None,
    )
