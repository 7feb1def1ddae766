"""Shared by the onboarding tests: the judged request, named people, and readers for what arrives by mail."""

from __future__ import annotations

import io
from email.message import Message

from docx import Document

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
