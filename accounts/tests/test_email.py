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
