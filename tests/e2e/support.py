"""Shared by the onboarding tests: the judged request, named people, and readers for what arrives by mail."""

from __future__ import annotations

import asyncio
import io
import threading
from email.message import Message

from aiosmtpd.controller import Controller
from docx import Document

from tests.tools.support.providers import Providers
from tests.tools.support.smtp import SmtpSink

JUDGED_REQUEST = "Onboard Maria Lopez as QA engineer starting 1 March, reporting to Dana"

PEOPLE = {
    "owner": "Olga Owner",
    "admin": "Ada Director",
    "manager": "Dana Whitfield",
    "member": "Sam Recruiter",
    "viewer": "Vic Viewer",
}


def name_people(tenant) -> None:
    """Give the tenant's users fixed names (the manager is Dana), so "reporting to Dana" has one match."""
    for role, name in PEOPLE.items():
        user = getattr(tenant, role)
        user.full_name = name
        user.save(update_fields=["full_name"])


def docx_text(data: bytes) -> str:
    document = Document(io.BytesIO(data))
    return "\n".join(p.text for p in document.paragraphs)


def parts(message: Message) -> list[Message]:
    return [part for part in message.walk() if not part.is_multipart()]


def attachment_names(message: Message) -> list[str]:
    return [part.get_filename() for part in parts(message) if part.get_filename()]


def calendar_parts(message: Message) -> list[str]:
    """The iCalendar texts a message carries (inline and attached), with folded lines joined again."""
    found = []
    for part in parts(message):
        if part.get_content_type() in ("text/calendar", "application/ics"):
            found.append(part.get_payload(decode=True).decode().replace("\r\n ", ""))
    return found


def by_subject(messages: list[Message], start: str) -> list[Message]:
    return [m for m in messages if str(m["Subject"]).startswith(start)]


# --- stand-ins that can hold their answer ------------------------------------------------------------


class HoldingSmtpSink:
    """The tools tests' SMTP sink, able to keep the next message (stored first) waiting for its "250 OK"."""

    def __init__(self) -> None:
        self.inner = SmtpSink()
        self.hold_next = threading.Event()
        self.release = threading.Event()
        self.holding = threading.Event()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.inner.envelopes.append(
                    {"from": envelope.mail_from, "rcpt": list(envelope.rcpt_tos), "data": envelope.content}
                )
                if sink.hold_next.is_set():
                    sink.hold_next.clear()
                    sink.holding.set()
                    await asyncio.get_running_loop().run_in_executor(None, sink.release.wait, 120)
                return "250 OK"

        self.inner.controller = Controller(Handler(), hostname="127.0.0.1", port=self.inner.port)

    @property
    def port(self) -> int:
        return self.inner.port

    @property
    def envelopes(self) -> list[dict]:
        return self.inner.envelopes

    @property
    def messages(self) -> list[Message]:
        return self.inner.messages

    def start(self) -> HoldingSmtpSink:
        self.inner.start()
        return self

    def reset(self) -> None:
        self.release.set()
        self.inner.envelopes.clear()
        self.hold_next.clear()
        self.holding.clear()
        self.release.clear()

    def stop(self) -> None:
        self.release.set()
        self.inner.stop()


class HoldingHris:
    """The tools tests' BambooHR stub; ``hold_next`` keeps the next "add employee" answer (employee already added)."""

    def __init__(self) -> None:
        self.stub = Providers()
        self.hold_next = threading.Event()
        self.release = threading.Event()
        self.holding = threading.Event()
        answer = self.stub.route

        def route(record):
            result = answer(record)
            creating = record["method"] == "POST" and record["path"].endswith("/v1/employees/")
            if creating and self.hold_next.is_set():
                self.hold_next.clear()
                self.holding.set()
                self.release.wait(60)
            return result

        self.stub.server.routes["*"] = route

    @property
    def base_url(self) -> str:
        return f"{self.stub.base}/bamboo"

    @property
    def employees(self) -> dict[int, dict]:
        return self.stub.employees

    @property
    def requests(self) -> list[dict]:
        return self.stub.requests

    def reset(self) -> None:
        self.release.set()
        self.stub.employees.clear()
        self.stub.requests.clear()
        self.hold_next.clear()
        self.holding.clear()
        self.release.clear()

    def close(self) -> None:
        self.release.set()
        self.stub.close()
