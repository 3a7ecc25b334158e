"""Writes of the accounts app: sign-in codes, sessions and profile updates."""

import hashlib
import hmac
import logging
import math
import secrets
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import LoginCode, LoginFailure, User, UserSession, normalize_email
from accounts.selectors import DayRule, user_day, user_day_rule
from accounts.signals import sign_ins_revoked
from config.audit import AuditAction, audit_record
from config.caching import CacheType, cache_types_invalidate_on_commit
from config.mail import UNCONFIGURED_BACKEND
from config.services import rows_delete_in_batches
from config.tasks import task_enqueue_on_commit, tasks_run_in_process

logger = logging.getLogger(__name__)

SESSION_TOUCH_INTERVAL = timedelta(minutes=1)


class InvalidLoginCode(Exception):
    """The code is wrong, expired, used up or was never sent."""


class LoginCodeLocked(Exception):
    """Too many wrong codes for this address lately, from any client."""

    def __init__(self, *, retry_after: int) -> None:
        super().__init__("Too many wrong codes for this address; ask for a new code later.")
        self.retry_after = retry_after


class LoginEmailUnavailable(Exception):
    """The mail server could not take the sign-in e-mail."""


def _code_hash(email: str, code: str) -> str:
    # Keyed, so a leaked table does not give the 10^6 codes away to an offline search.
    message = f"{email}:{code}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login_code_request(*, email: str) -> None:
    """E-mail a fresh 6-digit code. The newest few codes for the address all stay usable.

    With a worker, the e-mail is queued and retried until the mail server takes it or the code
    expires; without one, it is sent here and a failure withdraws the code.
    """
    email = normalize_email(email)
    if settings.EMAIL_BACKEND == UNCONFIGURED_BACKEND:
        # Nothing could ever send it: say so now rather than queue a code nobody will get.
        raise LoginEmailUnavailable("No mail backend is configured.")
    code = f"{secrets.randbelow(1_000_000):06d}"
    now = timezone.now()
    with transaction.atomic():
        login_code = LoginCode.objects.create(
            email=email,
            code_hash=_code_hash(email, code),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.LOGIN_CODE_TTL_SECONDS),
        )
        # A stranger asking for a code must not cancel the one the owner is typing: only codes
        # beyond the newest few stop working.
        older = (
            LoginCode.objects.filter(email=email, used_at__isnull=True)
            .order_by("-created_at", "-pk")
            .values_list("pk", flat=True)[settings.LOGIN_CODE_LIVE_MAX :]
        )
        LoginCode.objects.filter(pk__in=list(older)).update(used_at=now)
        if not tasks_run_in_process():
            # The code travels in the message only: logs and Sentry see the code's id.
            task_enqueue_on_commit(
                "accounts.tasks.login_code_email_send",
                kwargs={"login_code_id": login_code.pk, "email": email, "code": code},
                kwargsrepr=repr({"login_code_id": login_code.pk}),
            )
            return
    try:
        login_code_email_send(email=email, code=code)
    except LoginEmailUnavailable:
        LoginCode.objects.filter(pk=login_code.pk).delete()
        raise


def login_code_email_deliver(*, login_code_id: int, email: str, code: str) -> bool:
    """Send a queued code while it can still be used; False when it no longer can (used,
    expired or replaced) or is not the code stored under that id. Raises LoginEmailUnavailable
    for the task to retry."""
    live = LoginCode.objects.filter(
        pk=login_code_id,
        email=email,
        code_hash=_code_hash(email, code),
        used_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).exists()
    if not live:
        logger.info("Sign-in e-mail dropped: code %s is no longer usable", login_code_id)
        return False
    login_code_email_send(email=email, code=code)
    return True


def login_code_email_send(*, email: str, code: str) -> None:
    """Send one sign-in code. The code goes only into the message, never into a log line."""
    minutes = settings.LOGIN_CODE_TTL_SECONDS // 60
    try:
        send_mail(
            subject=f"Your Rankly sign-in code: {code}",
            message=f"Your Rankly sign-in code is {code}. It works once, for {minutes} minutes.",
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[email],
        )
    except (OSError, smtplib.SMTPException, ImproperlyConfigured) as error:
        # The error names the server's complaint; the message (and its code) is not in it.
        logger.error("Sign-in e-mail not sent: %s: %s", type(error).__name__, error)
        raise LoginEmailUnavailable from error


def login_code_verify(*, email: str, code: str) -> User:
    """The user the code signs in, created on first sign-in.

    A wrong code costs every live code of the address one attempt, and counts against the
    address's budget of wrong codes, whichever client sent it.
    """
    email = normalize_email(email)
    now = timezone.now()
    with transaction.atomic():
        # Locking the live codes also serialises concurrent guesses at the budget below.
        live = list(
            LoginCode.objects.select_for_update()
            .filter(email=email, used_at__isnull=True, expires_at__gt=now)
            .order_by("-created_at")
        )
        _login_failures_check(email=email, now=now)
        guess = _code_hash(email, code)
        if any(hmac.compare_digest(login_code.code_hash, guess) for login_code in live):
            LoginCode.objects.filter(pk__in=[login_code.pk for login_code in live]).update(
                used_at=now
            )
            # Passwordless: the new account's password is marked unusable, not left empty.
            user, _ = User.objects.get_or_create(
                email=email, defaults={"password": make_password(None)}
            )
            if not user.is_active:
                raise InvalidLoginCode("This account is disabled.")
            return user
        for login_code in live:
            login_code.attempts += 1
            if login_code.attempts >= settings.LOGIN_CODE_MAX_ATTEMPTS:
                login_code.used_at = now
            login_code.save(update_fields=["attempts", "used_at"])
        _, window = settings.LOGIN_FAILURES_PER_ADDRESS
        LoginFailure.objects.filter(email=email, created_at__lte=now - window).delete()
        LoginFailure.objects.create(email=email, created_at=now)
    raise InvalidLoginCode("This code is invalid or has expired; ask for a new one.")


def _login_failures_check(*, email: str, now: datetime) -> None:
    limit, window = settings.LOGIN_FAILURES_PER_ADDRESS
    recent = LoginFailure.objects.filter(email=email, created_at__gt=now - window).order_by(
        "created_at"
    )
    failures = list(recent.values_list("created_at", flat=True)[:limit])
    if len(failures) < limit:
        return
    # The window slides: the address gets a try back when its oldest counted failure ages out.
    retry_after = math.ceil((failures[0] + window - now).total_seconds())
    raise LoginCodeLocked(retry_after=max(retry_after, 1))


@dataclass(frozen=True)
class SignIn:
    user: User
    user_session: UserSession
    token: str


def user_session_start(*, request: HttpRequest, user: User, ip_address: str | None) -> SignIn:
    """Sign the user in on this device: a session cookie and an API token, one UserSession."""
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    token = secrets.token_urlsafe(32)
    user_session = UserSession.objects.create(
        user=user,
        token_hash=token_hash(token),
        session_key=request.session.session_key or "",
        device=request.headers.get("User-Agent", "")[:200],
        ip_address=ip_address,
    )
    request.session["user_session_id"] = user_session.pk
    return SignIn(user=user, user_session=user_session, token=token)


def _sign_ins_revoked_notify(
    *,
    user_id: int,
    user_session_ids: Iterable[int] = (),
    session_keys: Iterable[str] = (),
    everywhere: bool = False,
) -> None:
    transaction.on_commit(
        lambda: sign_ins_revoked.send(
            sender=UserSession,
            user_id=user_id,
            user_session_ids=list(user_session_ids),
            session_keys=[key for key in session_keys if key],
            everywhere=everywhere,
        )
    )


def _user_session_delete(*, user_session: UserSession) -> None:
    if user_session.session_key:
        session_store = import_module(settings.SESSION_ENGINE).SessionStore
        session_store(session_key=user_session.session_key).delete()
    user_session.delete()


def user_session_end(*, user_session: UserSession) -> None:
    """Revoke one device: its token, its session cookie and its open sockets all stop."""
    _sign_ins_revoked_notify(
        user_id=user_session.user_id,
        user_session_ids=[user_session.pk],
        session_keys=[user_session.session_key],
    )
    _user_session_delete(user_session=user_session)


def user_sessions_end_all(*, user: User) -> int:
    """Sign the user out of every device (an employee's revocation); returns how many."""
    user_sessions = list(UserSession.objects.filter(user=user))
    with transaction.atomic():
        for user_session in user_sessions:
            _user_session_delete(user_session=user_session)
        _sign_ins_revoked_notify(user_id=user.pk, everywhere=True)
    return len(user_sessions)


def user_deactivate(*, user: User) -> None:
    """The user can no longer sign in, and every sign-in they hold ends."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_active=False)
        user.is_active = False
        user_sessions_end_all(user=user)


def user_logout(*, request: HttpRequest, user_session: UserSession | None) -> None:
    if user_session is not None:
        user_session_end(user_session=user_session)
    elif request.user.is_authenticated:
        # A cookie session with no UserSession of its own still has its sockets.
        _sign_ins_revoked_notify(
            user_id=request.user.pk, session_keys=[request.session.session_key or ""]
        )
    logout(request)


def user_session_touch(*, user_session_id: int, last_seen_at: datetime | None) -> bool:
    """Record that a session is in use, at most once a minute. True when it wrote."""
    now = timezone.now()
    if last_seen_at is not None and now - last_seen_at < SESSION_TOUCH_INTERVAL:
        return False
    UserSession.objects.filter(pk=user_session_id).update(last_seen_at=now)
    return True


DAY_FIELDS = (
    "timezone",
    "day_start_hour",
    "pending_timezone",
    "pending_day_start_hour",
    "pending_from",
    "skipped_date",
)


def user_update(*, user: User, now: datetime | None = None, **fields: object) -> User:
    """Change the profile fields a user may change themselves; a new zone or day start waits
    for the end of the user's current day (user_day_change)."""
    timezone_name = fields.pop("timezone", None)
    day_start_hour = fields.pop("day_start_hour", None)
    assert timezone_name is None or isinstance(timezone_name, str)
    assert day_start_hour is None or isinstance(day_start_hour, int)
    if fields:
        for name, value in fields.items():
            setattr(user, name, value)
        user.full_clean(exclude=["password", "email"])
        user.save(update_fields=list(fields))
    if timezone_name is not None or day_start_hour is not None:
        user_day_change(
            user=user, timezone_name=timezone_name, day_start_hour=day_start_hour, now=now
        )
    return user


def _day_settle(*, user: User, now: datetime) -> bool:
    """Store a pending rule as the rule in force once its time has come. True when it did."""
    day = user_day(user=user, now=now)
    if user.pending_from is None or day.pending_rule is not None:
        return False
    user.timezone, user.day_start_hour = day.rule.timezone, day.rule.day_start_hour
    user.skipped_date = day.skipped_date
    user.pending_timezone, user.pending_day_start_hour, user.pending_from = "", None, None
    return True


def user_day_settle(*, user: User, now: datetime) -> None:
    """Put a pending zone and day start in force once their time has come. The caller holds
    the user's row lock (a ranking submission does)."""
    if _day_settle(user=user, now=now):
        User.objects.filter(pk=user.pk).update(**{name: getattr(user, name) for name in DAY_FIELDS})


def user_day_change(
    *,
    user: User,
    timezone_name: str | None = None,
    day_start_hour: int | None = None,
    now: datetime | None = None,
) -> User:
    """Schedule a new zone or day start for the end of the user's current day in the rule in
    force: a day is never cut short, so no move can start a fresh date early and be paid again.

    A second change before then replaces the pending one; going back cancels it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        _day_settle(user=locked, now=now)
        current = user_day_rule(user=locked)
        base = user_day(user=locked, now=now).pending_rule or current
        wanted = DayRule(
            timezone=timezone_name or base.timezone,
            day_start_hour=base.day_start_hour if day_start_hour is None else day_start_hour,
        )
        if wanted == current:
            locked.pending_timezone, locked.pending_day_start_hour, locked.pending_from = (
                "",
                None,
                None,
            )
        else:
            locked.pending_timezone = wanted.timezone
            locked.pending_day_start_hour = wanted.day_start_hour
            locked.pending_from = current.day_end(current.date_at(now))
        locked.full_clean(exclude=["password", "email"])
        locked.save(update_fields=DAY_FIELDS)
    for name in DAY_FIELDS:
        setattr(user, name, getattr(locked, name))
    return user


def user_leaderboard_exclusion_set(
    *, actor: User, user: User, excluded: bool, reason: str = ""
) -> User:
    """Take a user off the leaderboards (or put them back), audited; the boards refill."""
    with transaction.atomic():
        was = user.leaderboard_excluded
        user.leaderboard_excluded = excluded
        user.save(update_fields=["leaderboard_excluded"])
        audit_record(
            actor=actor,
            action=AuditAction.LEADERBOARD_EXCLUSION,
            target_type="user",
            target_id=user.pk,
            reason=reason,
            data={"excluded": excluded, "was": was},
        )
        cache_types_invalidate_on_commit(
            cache_types=(CacheType.LEADERBOARD, CacheType.LEADERBOARD_POSITION)
        )
    return user


# Codes are kept a day past their expiry: recent failures still count against an address.
LOGIN_CODE_KEEP = timedelta(days=1)


def sign_in_housekeeping() -> dict[str, int]:
    """Delete login codes a day past their expiry, wrong-code records past their window,
    sign-in sessions idle longer than a session lives, and Django's expired session rows;
    returns how many of each went."""
    now = timezone.now()
    codes = rows_delete_in_batches(LoginCode.objects.filter(expires_at__lt=now - LOGIN_CODE_KEEP))
    _, window = settings.LOGIN_FAILURES_PER_ADDRESS
    failures = rows_delete_in_batches(LoginFailure.objects.filter(created_at__lte=now - window))
    idle = now - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    sessions = rows_delete_in_batches(UserSession.objects.filter(last_seen_at__lt=idle))
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
    return {"login_codes": codes, "login_failures": failures, "sessions": sessions}
