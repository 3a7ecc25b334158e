"""Writes of the accounts app: sign-in codes, sessions and profile updates."""

import hashlib
import hmac
import logging
import math
import secrets
import smtplib
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
from config.audit import AuditAction, audit_record
from config.caching import CacheType, cache_types_invalidate_on_commit

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
    """The mail server could not take the sign-in e-mail; the code was withdrawn."""


def _code_hash(email: str, code: str) -> str:
    # Keyed, so a leaked table does not give the 10^6 codes away to an offline search.
    message = f"{email}:{code}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login_code_request(*, email: str) -> None:
    """E-mail a fresh 6-digit code. The newest few codes for the address all stay usable."""
    email = normalize_email(email)
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
    try:
        login_code_email_send(email=email, code=code)
    except LoginEmailUnavailable:
        LoginCode.objects.filter(pk=login_code.pk).delete()
        raise


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


def user_session_end(*, user_session: UserSession) -> None:
    """Revoke one device: its token and its session cookie both stop working."""
    if user_session.session_key:
        session_store = import_module(settings.SESSION_ENGINE).SessionStore
        session_store(session_key=user_session.session_key).delete()
    user_session.delete()


def user_logout(*, request: HttpRequest, user_session: UserSession | None) -> None:
    if user_session is not None:
        user_session_end(user_session=user_session)
    logout(request)


def user_session_touch(*, user_session_id: int, last_seen_at: datetime | None) -> bool:
    """Record that a session is in use, at most once a minute. True when it wrote."""
    now = timezone.now()
    if last_seen_at is not None and now - last_seen_at < SESSION_TOUCH_INTERVAL:
        return False
    UserSession.objects.filter(pk=user_session_id).update(last_seen_at=now)
    return True


def user_update(*, user: User, **fields: object) -> User:
    """Change the profile fields a user may change themselves."""
    for name, value in fields.items():
        setattr(user, name, value)
    user.full_clean(exclude=["password", "email"])
    user.save(update_fields=list(fields))
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
