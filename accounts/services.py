"""Writes of the accounts app: sign-in codes, sessions and profile updates."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.hashers import make_password
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import LoginCode, User, UserSession, normalize_email
from config.audit import AuditAction, audit_record
from config.caching import CacheType, cache_types_invalidate_on_commit
from config.services import rows_delete_in_batches

SESSION_TOUCH_INTERVAL = timedelta(minutes=1)


class InvalidLoginCode(Exception):
    """The code is wrong, expired, used up or was never sent."""


def _code_hash(email: str, code: str) -> str:
    # Keyed, so a leaked table does not give the 10^6 codes away to an offline search.
    message = f"{email}:{code}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login_code_request(*, email: str) -> None:
    """E-mail a fresh 6-digit code; earlier unused codes for the address stop working."""
    email = normalize_email(email)
    code = f"{secrets.randbelow(1_000_000):06d}"
    now = timezone.now()
    with transaction.atomic():
        LoginCode.objects.filter(email=email, used_at__isnull=True).update(used_at=now)
        LoginCode.objects.create(
            email=email,
            code_hash=_code_hash(email, code),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.LOGIN_CODE_TTL_SECONDS),
        )
    minutes = settings.LOGIN_CODE_TTL_SECONDS // 60
    send_mail(
        subject=f"Your Rankly sign-in code: {code}",
        message=f"Your Rankly sign-in code is {code}. It works once, for {minutes} minutes.",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[email],
    )


def login_code_verify(*, email: str, code: str) -> User:
    """The user the code signs in, created on first sign-in. A wrong code costs one attempt."""
    email = normalize_email(email)
    now = timezone.now()
    with transaction.atomic():
        login_code = (
            LoginCode.objects.select_for_update()
            .filter(email=email, used_at__isnull=True, expires_at__gt=now)
            .order_by("-created_at")
            .first()
        )
        if login_code is None:
            raise InvalidLoginCode("This code is invalid or has expired; ask for a new one.")
        if hmac.compare_digest(login_code.code_hash, _code_hash(email, code)):
            login_code.used_at = now
            login_code.save(update_fields=["used_at"])
            # Passwordless: the new account's password is marked unusable, not left empty.
            user, _ = User.objects.get_or_create(
                email=email, defaults={"password": make_password(None)}
            )
            if not user.is_active:
                raise InvalidLoginCode("This account is disabled.")
            return user
        login_code.attempts += 1
        if login_code.attempts >= settings.LOGIN_CODE_MAX_ATTEMPTS:
            login_code.used_at = now
        login_code.save(update_fields=["attempts", "used_at"])
    raise InvalidLoginCode("This code is invalid or has expired; ask for a new one.")


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


def user_session_touch(*, user_session_id: int, last_seen_at) -> bool:
    """Record that a session is in use, at most once a minute. True when it wrote."""
    now = timezone.now()
    if last_seen_at is not None and now - last_seen_at < SESSION_TOUCH_INTERVAL:
        return False
    UserSession.objects.filter(pk=user_session_id).update(last_seen_at=now)
    return True


def user_update(*, user: User, **fields) -> User:
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


# Codes are kept a day past their expiry: recent failures still count against an address.
LOGIN_CODE_KEEP = timedelta(days=1)


def sign_in_housekeeping() -> dict[str, int]:
    """Delete login codes a day past their expiry, sign-in sessions idle longer than a session
    lives, and Django's expired session rows; returns how many of each went."""
    now = timezone.now()
    codes = rows_delete_in_batches(LoginCode.objects.filter(expires_at__lt=now - LOGIN_CODE_KEEP))
    idle = now - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    sessions = rows_delete_in_batches(UserSession.objects.filter(last_seen_at__lt=idle))
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
    return {"login_codes": codes, "sessions": sessions}
