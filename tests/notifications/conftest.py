"""A real SMTP server (aiosmtpd) for the notification tests, on a free port, and the Django
settings that send mail to it."""

from __future__ import annotations

import email
import email.policy
import socket
from dataclasses import dataclass

import pytest
from aiosmtpd.controller import Controller

from tests.rotation.conftest import _fresh_aws_caches, world  # noqa: F401

BASE_URL = "https://vault.example.test"


@dataclass
class Arrived:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage

    @property
    def subject(self) -> str:
        return " ".join(str(self.message["Subject"]).split())

    @property
    def body(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    @property
    def raw(self) -> str:
        return self.message.as_string()


class Inbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.arrived: list[Arrived] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.arrived.append(Arrived(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Arrived]:
        return [a for a in self.arrived if address in a.recipients]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(settings):
    """A running SMTP server that the vault sends to (as EMAIL_URL=smtp://127.0.0.1:PORT)."""
    import environ

    server = SmtpServer()
    for name, value in environ.Env.email_url_config(f"smtp://127.0.0.1:{server.port}").items():
        setattr(settings, name, value)
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "PAM Vault <vault@example.test>"
    settings.VAULT_BASE_URL = BASE_URL
    server.start()
    yield server
    server.stop()


@pytest.fixture
def addresses(personas):
    """Every persona has an address; the tests see who was mailed."""
    for persona in ("editor", "viewer", "manager", "outsider", "superuser"):
        user = getattr(personas, persona)
        user.email = f"{user.username}@example.test"
        user.save(update_fields=["email"])
    return personas
