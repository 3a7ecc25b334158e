"""A real SMTP server of the tests' own on a free port: what it receives is what a user reads."""

import contextlib
import re
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from config.tests.private_redis import free_port


class Mailbox:
    """Every message the server accepted, in order; wait_for blocks until one arrives."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"smtp://127.0.0.1:{port}"
        self.messages: list[EmailMessage] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope) -> str:
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)

    def code_for(self, address: str, timeout: float = 10) -> str:
        """The newest sign-in code e-mailed to the address."""
        with self._arrived:
            self._arrived.wait_for(
                lambda: any(address in m["To"] for m in self.messages), timeout=timeout
            )
            sent = [m for m in self.messages if address in m["To"]]
        [code] = set(re.findall(r"\b\d{6}\b", sent[-1].get_content()))
        return code


@contextlib.contextmanager
def smtp_server(*, port: int | None = None) -> Iterator[Mailbox]:
    mailbox = Mailbox(port or free_port())
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
