import secrets
import unicodedata
import zoneinfo
from typing import ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone as dj_timezone

# They render as a dot but are not one: "jane<U+2024>doe@" would pass for "jane.doe@".
CONFUSABLE_DOTS = frozenset(
    "\u00b7\u0701\u0702\u2024\u2027\u2219\u22c5\u2e31\u3002\u30fb\ufe52\uff0e\uff61"
)


def normalize_email(email: str) -> str:
    """One mailbox, one spelling: lower case, NFC, the domain in its ASCII (IDNA) form.

    Raises ValueError for what one mailbox could be spelt as twice or passed off as another:
    quoted local parts, control and invisible characters, look-alike dots.
    """
    local, at, domain = email.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError("An e-mail address is local-part@domain.")
    if local.startswith('"') or local.endswith('"'):
        raise ValueError("Quoted e-mail addresses are not accepted.")
    local = unicodedata.normalize("NFC", local).lower()
    if any(unicodedata.category(c).startswith("C") or c in CONFUSABLE_DOTS for c in local):
        raise ValueError("The address holds an invisible, control or look-alike character.")
    try:
        domain = domain.lower().encode("idna").decode("ascii")
    except UnicodeError as error:
        raise ValueError("The address's domain is not a valid domain name.") from error
    return f"{local}@{domain}"


def handle_generate() -> str:
    """A public name that says nothing about its owner: 48 random bits, as 12 hex digits."""
    return f"player-{secrets.token_hex(6)}"


# A day may start up to 04:00, for night owls; later would make "today" mostly yesterday.
DAY_START_HOUR_MAX = 4


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone name.")


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> "User":
        try:
            email = normalize_email(username or "")
        except ValueError as error:
            raise self.model.DoesNotExist from error
        return self.get(email=email)

    def create_user(self, email: str, password: str | None = None, **fields) -> "User":
        if not email:
            raise ValueError("Users must have an e-mail address.")
        user = self.model(email=normalize_email(email), **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields) -> "User":
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(
        max_length=254,
        unique=True,
        help_text="Stored canonically: lower case, the domain in ASCII.",
    )
    display_name = models.CharField(max_length=50, blank=True)
    handle = models.CharField(
        max_length=20,
        unique=True,
        default=handle_generate,
        editable=False,
        help_text="Shown publicly until the user chooses a display name.",
    )
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    # Database defaults too: bulk loaders insert users with SQL of their own.
    day_start_hour = models.PositiveSmallIntegerField(
        default=0,
        db_default=0,
        validators=[MaxValueValidator(DAY_START_HOUR_MAX)],
        help_text="The local hour the user's day starts at: 0 is midnight.",
    )
    pending_timezone = models.CharField(
        max_length=64, blank=True, default="", db_default="", validators=[validate_timezone]
    )
    pending_day_start_hour = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(DAY_START_HOUR_MAX)]
    )
    pending_from = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the pending zone and day start take effect: the end of the user's "
        "current day in the old ones.",
    )
    skipped_date = models.DateField(
        null=True,
        blank=True,
        help_text="The date the last zone or day-start change skipped: it never existed for "
        "the user, so missing it breaks no streak.",
    )
    points = models.BigIntegerField(default=0, help_text="Sum of the user's activity ledger.")
    points_reached_at = models.DateTimeField(
        default=dj_timezone.now,
        # Rows written in bulk SQL (benchmarks, imports) get one too.
        db_default=Now(),
        help_text="When the points last changed: equal scores list who reached them first.",
    )
    leaderboard_opt_out = models.BooleanField(default=False)
    leaderboard_excluded = models.BooleanField(
        default=False, help_text="Set by employees: keeps the user off every leaderboard."
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Employees: may use the admin.")
    date_joined = models.DateTimeField(default=dj_timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        indexes = [
            # The SQL leaderboard (gamification.selectors): pages, counts and neighbours in board
            # order, never reading the table.
            models.Index(
                fields=["-points", "points_reached_at", "id"],
                name="user_leaderboard",
                condition=models.Q(
                    is_active=True,
                    is_staff=False,
                    leaderboard_opt_out=False,
                    leaderboard_excluded=False,
                ),
            ),
            # The SQL period boards leave these few users out of the ledger's totals without
            # reading the table: the complement of user_leaderboard's predicate.
            models.Index(
                fields=["id"],
                name="user_unranked",
                condition=~models.Q(
                    is_active=True,
                    is_staff=False,
                    leaderboard_opt_out=False,
                    leaderboard_excluded=False,
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs) -> None:
        try:
            self.email = normalize_email(self.email)
        except ValueError:
            # An address stored before the rules tightened stays as it was, so its owner can
            # still be saved; a new account is refused.
            if self._state.adding:
                raise
        super().save(*args, **kwargs)

    # The columns a public name is made of, for reads that take them without building users.
    PUBLIC_NAME_FIELDS = ("display_name", "handle")

    @staticmethod
    def public_name_of(display_name: str, handle: str) -> str:
        # Never derived from the e-mail: public names show on the board and the live feed.
        return display_name or handle

    @property
    def public_name(self) -> str:
        return User.public_name_of(self.display_name, self.handle)


class LoginCode(models.Model):
    """A one-time sign-in code, e-mailed to `email`. Only its hash is stored."""

    email = models.EmailField(max_length=254)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=dj_timezone.now)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["email", "-created_at"], name="logincode_email_recent")]

    def __str__(self) -> str:
        return f"code for {self.email}"


class LoginFailure(models.Model):
    """One wrong code tried for an address: the per-address budget counts these over all IPs."""

    email = models.EmailField(max_length=254)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [models.Index(fields=["email", "created_at"], name="loginfailure_email_time")]

    def __str__(self) -> str:
        return f"wrong code for {self.email}"


class UserSession(models.Model):
    """One signed-in device: a Django session (browsers) and an API token (clients)."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="user_sessions", db_index=False
    )
    token_hash = models.CharField(max_length=64, unique=True)
    session_key = models.CharField(max_length=40, blank=True)
    device = models.CharField(max_length=200, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)
    last_seen_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [
            # sessions_for_user: a user's sessions, most recently seen first.
            models.Index(fields=["user", "-last_seen_at"], name="usersession_user_seen"),
            # users_seen_since: users seen in the last minutes (online now without Redis).
            models.Index(fields=["last_seen_at", "user"], name="usersession_seen_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.device or 'unknown device'}"
