"""A real worker process against Redis: jobs survive a worker killed under them and a Redis
restarted under their queued message; a sign-in code outlives a mail server that is down."""

import os

import pytest
from django.conf import settings

from adminops import services
from adminops.models import Job, JobKind, JobStatus
from config.tests.private_redis import free_port, private_redis
from config.tests.smtp import smtp_server
from config.tests.worker import running_worker, sending_to, wait_for
from products.models import Product

pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

ROWS = 3000
REQUEST_URL = "/api/customer/email-login"
VERIFY_URL = "/api/customer/email-login/verify"


def big_csv() -> str:
    return "name,category\n" + "".join(f"Product {n},cat-{n % 20}\n" for n in range(ROWS))


def job_state(job_id: int) -> Job:
    return Job.objects.get(pk=job_id)


def test_a_job_whose_pool_process_is_killed_runs_again_and_finishes(staff_user):
    redis_url = os.environ["UPSTASH_REDIS_URL"]
    with running_worker(redis_url=redis_url) as worker, sending_to(redis_url):
        job, _ = services.job_start(
            kind=JobKind.IMPORT_PRODUCTS, actor=staff_user, params={"text": big_csv()}
        )
        wait_for(lambda: job_state(job.pk).done > 0, what="the import to make progress", log=worker)
        worker.kill_pool_process()
        wait_for(
            lambda: job_state(job.pk).status == JobStatus.SUCCEEDED,
            what="the job to run again and finish",
            log=worker,
        )
    finished = job_state(job.pk)
    assert finished.attempts == 2
    assert finished.report["created"] == ROWS
    assert (finished.done, finished.total) == (ROWS, ROWS)
    assert Product.objects.count() == ROWS


def test_a_job_whose_whole_worker_is_killed_is_recovered_by_another(staff_user):
    redis_url = os.environ["UPSTASH_REDIS_URL"]
    with sending_to(redis_url):
        with running_worker(redis_url=redis_url) as first:
            job, _ = services.job_start(
                kind=JobKind.IMPORT_PRODUCTS, actor=staff_user, params={"text": big_csv()}
            )
            wait_for(lambda: job_state(job.pk).done > 0, what="progress", log=first)
            first.kill()
        assert job_state(job.pk).status == JobStatus.RUNNING
        with running_worker(redis_url=redis_url) as second:
            # The periodic recovery, once the dead worker's lease has run out.
            wait_for(lambda: services.jobs_recover() == 1, what="the lease to run out")
            wait_for(
                lambda: job_state(job.pk).status == JobStatus.SUCCEEDED,
                what="the job to finish on the second worker",
                log=second,
            )
    assert Product.objects.count() == ROWS


def test_a_job_queued_when_redis_restarts_still_runs(staff_user):
    with private_redis() as redis_server, sending_to(redis_server.url):
        job, _ = services.job_start(kind=JobKind.REBUILD_POINTS, actor=staff_user)
        assert redis_server.client().llen(f"{settings.BROKER_KEY_PREFIX}tools") == 1
        # No persistence: the queued message dies with the server.
        redis_server.kill()
        redis_server.start()
        assert redis_server.client().llen(f"{settings.BROKER_KEY_PREFIX}tools") == 0
        with running_worker(redis_url=redis_server.url) as worker:
            assert services.jobs_recover(queued_for_seconds=0) == 1
            wait_for(
                lambda: job_state(job.pk).status == JobStatus.SUCCEEDED,
                what="the recovered job",
                log=worker,
            )
            # The worker outlives a restart under it and takes the next job.
            redis_server.kill()
            redis_server.start()
            later, _ = services.job_start(kind=JobKind.WARM_CACHES, actor=staff_user)
            wait_for(
                lambda: job_state(later.pk).status == JobStatus.SUCCEEDED,
                what="a job sent after the restart",
                log=worker,
            )


def test_a_code_mailed_while_the_mail_server_is_down_arrives_once_it_is_back(api_client):
    redis_url = os.environ["UPSTASH_REDIS_URL"]
    port = free_port()
    with (
        running_worker(
            redis_url=redis_url, extra_env={"EMAIL_URL": f"smtp://127.0.0.1:{port}"}
        ) as worker,
        sending_to(redis_url),
    ):
        response = api_client.post(REQUEST_URL, {"email": "ada@example.com"}, format="json")
        assert response.status_code == 202
        wait_for(
            lambda: worker.log_text().count("Sign-in e-mail not sent") >= 2,
            what="the worker to fail to send, twice",
            log=worker,
        )
        with smtp_server(port=port) as mailbox:
            code = mailbox.code_for("ada@example.com", timeout=90)
        log = worker.log_text()
    assert code not in log
    assert "ada@example.com" not in log
    verified = api_client.post(
        VERIFY_URL, {"email": "ada@example.com", "code": code}, format="json"
    )
    assert verified.status_code == 200
