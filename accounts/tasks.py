"""Background work of the accounts app: each task calls accounts.services."""

from celery import shared_task

from accounts import services
from config.tasks import TRANSIENT_ERRORS


@shared_task(name="accounts.tasks.sign_in_housekeeping")
def sign_in_housekeeping() -> dict[str, int]:
    return services.sign_in_housekeeping()


# The mail server down or slow: retried with backoff until it takes the code or the code dies.
@shared_task(
    name="accounts.tasks.login_code_email_send",
    autoretry_for=(*TRANSIENT_ERRORS, services.LoginEmailUnavailable),
)
def login_code_email_send(*, login_code_id: int, email: str, code: str) -> bool:
    return services.login_code_email_deliver(login_code_id=login_code_id, email=email, code=code)
