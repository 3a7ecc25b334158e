"""Employee tools as background jobs: each task calls adminops.services."""

from celery import shared_task

from adminops import services


@shared_task(bind=True, name="adminops.tasks.job_run")
def job_run(self, *, job_id: int) -> None:
    try:
        services.job_run(job_id=job_id)
    except services.JobLeased as leased:
        raise self.retry(countdown=leased.seconds + 1, max_retries=None) from leased


@shared_task(name="adminops.tasks.jobs_recover")
def jobs_recover() -> int:
    return services.jobs_recover()
