"""Sign-in codes travel by real mail: a real SMTP server of the test's own receives them."""

import re
import socket

import pytest
from django.test import override_settings

from accounts.models import LoginCode
from config.mail import UNCONFIGURED_BACKEND, email_choice
from config.tests.private_redis import free_port
from config.tests.smtp import smtp_server

pytestmark = pytest.mark.django_db

REQUEST_URL = "/api/customer/email-login"
VERIFY_URL = "/api/customer/email-login/verify"
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def smtp_settings(port: int) -> dict:
    return {"EMAIL_BACKEND": SMTP_BACKEND, "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": port}


def test_a_code_arrives_at_an_smtp_server_and_signs_in(api_client):
    with smtp_server() as mailbox, override_settings(**smtp_settings(mailbox.port)):
        response = api_client.post(REQUEST_URL, {"email": "ada@example.com"}, format="json")
        assert response.status_code == 202, response.content
        code = mailbox.code_for("ada@example.com")

    [message] = mailbox.messages
    assert message["From"] == "Rankly <no-reply@rankly.local>"
    response = api_client.post(
        VERIFY_URL, {"email": "ada@example.com", "code": code}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["user"]["email"] == "ada@example.com"


@override_settings(DEFAULT_FROM_EMAIL="Rankly <codes@rankly.example>")
def test_the_sender_is_default_from_email(api_client):
    with smtp_server() as mailbox, override_settings(**smtp_settings(mailbox.port)):
        api_client.post(REQUEST_URL, {"email": "ada@example.com"}, format="json")
        [message] = mailbox.wait_for(1)
    assert message["From"] == "Rankly <codes@rankly.example>"


def test_a_mail_server_that_is_down_is_a_503_and_leaves_no_live_code(api_client, caplog):
    with override_settings(**smtp_settings(free_port())):
        response = api_client.post(REQUEST_URL, {"email": "ada@example.com"}, format="json")
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "email_unavailable"
    assert response["Retry-After"]
    assert not LoginCode.objects.exists()
    assert "Sign-in e-mail not sent: ConnectionRefusedError" in caplog.text


@override_settings(EMAIL_BACKEND=UNCONFIGURED_BACKEND)
def test_production_without_a_mail_backend_sends_nothing_and_prints_no_code(
    api_client, caplog, capsys
):
    response = api_client.post(REQUEST_URL, {"email": "ada@example.com"}, format="json")
    assert response.status_code == 503
    output = caplog.text + "".join(capsys.readouterr())
    assert not re.search(r"\b\d{6}\b", output), output


@pytest.mark.parametrize(
    ("url", "backend", "host", "port", "tls", "ssl"),
    [
        ("smtp://mail.example.com:2525", SMTP_BACKEND, "mail.example.com", 2525, False, False),
        ("smtp+tls://u:p@mail.example.com:587", SMTP_BACKEND, "mail.example.com", 587, True, False),
        ("smtp+ssl://u:p@mail.example.com:465", SMTP_BACKEND, "mail.example.com", 465, False, True),
    ],
)
def test_email_url_selects_the_smtp_server(url, backend, host, port, tls, ssl):
    for production in (False, True):
        choice = email_choice(url=url, production=production)
        assert (choice.backend, choice.host, choice.port) == (backend, host, port)
        assert (choice.use_tls, choice.use_ssl, choice.problem) == (tls, ssl, "")


def test_email_url_carries_the_smtp_credentials():
    choice = email_choice(url="smtp+tls://mailer:s3cret@mail.example.com:587", production=True)
    assert (choice.user, choice.password) == ("mailer", "s3cret")


def test_a_percent_encoded_user_name_and_password_are_decoded():
    choice = email_choice(
        url="smtp+tls://me%40x.example:p%3As%2Fs@mail.example.com:587", production=True
    )
    assert (choice.user, choice.password) == ("me@x.example", "p:s/s")


def test_a_mail_server_that_never_answers_fails_the_request_after_email_timeout(api_client):
    # Accepts the connection, never sends its greeting.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        hung = {**smtp_settings(silent.getsockname()[1]), "EMAIL_TIMEOUT": 1}
        with override_settings(**hung):
            response = api_client.post(REQUEST_URL, {"email": "ada@example.com"}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "email_unavailable"


def test_development_without_email_url_prints_mail_on_the_console():
    choice = email_choice(url="", production=False)
    assert choice.backend == "django.core.mail.backends.console.EmailBackend"
    assert choice.problem == ""


@pytest.mark.parametrize("url", ["", "consolemail://", "memorymail://"])
def test_production_refuses_no_email_url_and_the_console_and_locmem_backends(url):
    choice = email_choice(url=url, production=True)
    assert choice.backend == UNCONFIGURED_BACKEND
    assert choice.problem


@pytest.fixture
def with_a_worker(monkeypatch):
    """Tasks go to a broker instead of running in process; what would be sent is recorded."""
    from config import tasks
    from config.celery import app

    sent = []
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setattr(tasks, "task_send", lambda name, **kwargs: sent.append((name, kwargs)))
    return sent


def test_with_a_worker_the_request_queues_the_mail_showing_only_the_codes_id(
    api_client, with_a_worker, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(REQUEST_URL, {"email": "ada@example.com"}, format="json")
    assert response.status_code == 202
    assert mailoutbox == []
    [(name, sent)] = with_a_worker
    login_code = LoginCode.objects.get()
    assert name == "accounts.tasks.login_code_email_send"
    assert sent["kwargs"]["login_code_id"] == login_code.pk
    assert sent["kwargsrepr"] == repr({"login_code_id": login_code.pk})
    assert sent["kwargs"]["code"] not in sent["kwargsrepr"]


def test_a_queued_code_is_mailed_while_live_and_dropped_once_used(mailoutbox):
    from django.utils import timezone

    from accounts.services import _code_hash
    from accounts.tasks import login_code_email_send

    code = LoginCode.objects.create(
        email="ada@example.com",
        code_hash=_code_hash("ada@example.com", "246810"),
        expires_at=timezone.now() + timezone.timedelta(minutes=10),
    )
    kwargs = {"login_code_id": code.pk, "email": "ada@example.com", "code": "246810"}
    # A message whose code is not the one stored under its id is not mailed.
    assert login_code_email_send.apply(kwargs={**kwargs, "code": "135790"}).get() is False
    assert mailoutbox == []
    assert login_code_email_send.apply(kwargs=kwargs).get() is True
    assert "246810" in mailoutbox[0].body
    LoginCode.objects.filter(pk=code.pk).update(used_at=timezone.now())
    assert login_code_email_send.apply(kwargs=kwargs).get() is False
    assert len(mailoutbox) == 1
