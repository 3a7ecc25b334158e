"""Background work of the accounts app: each task calls accounts.services."""

from celery import shared_task

from accounts import services


@shared_task(name="accounts.tasks.sign_in_housekeeping")
def sign_in_housekeeping() -> dict[str, int]:
    return services.sign_in_housekeeping()
