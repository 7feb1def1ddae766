"""Email-in fixtures: a private spool and media folder, mail builders, and a real SMTP receiver on loopback."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from automation.email_in.smtp import Receiver
from automation.email_in.spool import Spool

DOMAIN = "inbound.test"


@pytest.fixture(autouse=True)
def _mail_settings(settings, tmp_path):
    settings.INBOUND_EMAIL_DOMAIN = DOMAIN
    settings.INBOUND_EMAIL_SPOOL_DIR = str(tmp_path / "spool")
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.SITE_URL = "https://staffer.example"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret", "MAILGUN_WEBHOOK_SIGNING_KEY": "mailgun-signing-key"}


@pytest.fixture
def spool(settings) -> Spool:
    return Spool().ensure()


def org_address(slug: str) -> str:
    return f"tasks+{slug}@{DOMAIN}"


def make_mail(
    *, sender: str, to: str, subject: str = "Order more paper", body: str = "We are out of A4 paper.",
    message_id: str | None = None, html: str | None = None, attachments: list[tuple[str, bytes, str]] = (),
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="client.test")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, data, content_type in attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message


def as_wire(message: EmailMessage) -> bytes:
    """The message as SMTP carries it (CRLF line ends)."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


@pytest.fixture
def receiver(spool):
    """The real SMTP receiver on a free loopback port (its spool retry loop runs once at start only)."""
    running = Receiver(host="127.0.0.1", spool=spool, retry_seconds=3600, workers=2, process_timeout=30).start()
    yield running
    running.stop()


class SMTPSender:
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def send(self, message: EmailMessage | bytes, *, sender: str, to: list[str]) -> dict[str, tuple[int, bytes]]:
        """Deliver over SMTP; returns refused recipients (smtplib's convention). Raises on a refused DATA."""
        with smtplib.SMTP(self.receiver.host, self.receiver.port, timeout=60) as client:
            client.ehlo("client.test")
            data = message if isinstance(message, bytes) else as_wire(message)
            return client.sendmail(sender, to, data)


@pytest.fixture
def smtp(receiver) -> SMTPSender:
    return SMTPSender(receiver)
