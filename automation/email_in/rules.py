"""The deterministic metadata parser: due dates, priority and assignee from plain phrases.

Understood: ``due 2026-12-01`` / ``by 2026-12-01 15:00`` / ``deadline: 2026-12-01``,
``by Friday`` (the next Friday, today included), ``by tomorrow`` / ``due today``,
``by 1 March`` / ``by March 1``, ``in 3 days``, ``by end of week``;
``urgent`` / ``asap`` / ``critical``, ``high priority`` / ``important``,
``low priority`` / ``no rush``; ``assign to <email>`` / ``assign to <name>``.
A date without a time means the end of the working day (17:00) in the
organization's time zone. Confidence: 0.95 for ISO dates and email
addresses, less for weekdays, names and loose words.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from automation.email_in.hooks import ExtractedMetadata, ExtractionRequest
from automation.models import Priority

END_OF_DAY = time(17, 0)
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]
_MONTH = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|sep(?:t(?:ember)?)?|" \
         r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_LEAD = r"\b(?:due(?:\s+(?:on|by|date))?|by|before|deadline)\s*:?\s*(?:on\s+)?"
_ISO = re.compile(_LEAD + r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2}):(\d{2}))?\b", re.IGNORECASE)
_WEEKDAY = re.compile(_LEAD + r"(?:next\s+)?(" + "|".join(WEEKDAYS) + r")\b", re.IGNORECASE)
_RELATIVE = re.compile(_LEAD + r"(today|tonight|tomorrow|end of (?:the )?week|eow|end of (?:the )?day|eod)\b",
                       re.IGNORECASE)
_DAY_MONTH = re.compile(_LEAD + r"(\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH + r"\b", re.IGNORECASE)
_MONTH_DAY = re.compile(_LEAD + _MONTH + r"\s+(\d{1,2})(?:st|nd|rd|th)?\b", re.IGNORECASE)
_IN_DAYS = re.compile(r"\bwithin\s+(\d{1,3})\s+days?\b|\bin\s+(\d{1,3})\s+days?\b", re.IGNORECASE)
_URGENT = re.compile(r"\b(urgent|urgently|asap|as soon as possible|critical|emergency)\b", re.IGNORECASE)
_HIGH = re.compile(r"\b(high[- ]priority|important|priority:\s*high)\b", re.IGNORECASE)
_LOW = re.compile(r"\b(low[- ]priority|no rush|whenever you can|priority:\s*low)\b", re.IGNORECASE)
_ASSIGN_EMAIL = re.compile(r"\bassign(?:ed)?\s+(?:it\s+|this\s+)?to\s*:?\s*<?([\w.+-]+@[\w-]+(?:\.[\w-]+)+)>?",
                           re.IGNORECASE)
_ASSIGN_NAME = re.compile(r"\b(?i:assign(?:ed)?\s+(?:it\s+|this\s+)?to)\s*:?\s*([A-Z][\w'-]+(?:\s+[A-Z][\w'-]+)?)")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _month_number(word: str) -> int:
    word = word.lower()[:3]
    return next(i for i, month in enumerate(MONTHS, start=1) if month.startswith(word))


def _next_date(today: date, month: int, day: int) -> date | None:
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            return None
        if candidate >= today:
            return candidate
    return None


def _due(text: str, now: datetime, zone: ZoneInfo) -> tuple[datetime | None, float, str]:
    local = now.astimezone(zone)
    today = local.date()

    def at(day: date, moment: time = END_OF_DAY) -> datetime:
        return datetime.combine(day, moment, tzinfo=zone)

    match = _ISO.search(text)
    if match:
        year, month, day, hour, minute = match.groups()
        try:
            moment = time(int(hour), int(minute)) if hour is not None else END_OF_DAY
            return at(date(int(year), int(month), int(day)), moment), 0.95, match.group(0).strip()
        except ValueError:
            pass
    match = _RELATIVE.search(text)
    if match:
        word = match.group(1).lower()
        if word in ("today", "tonight", "end of day", "end of the day", "eod"):
            return at(today), 0.9, match.group(0).strip()
        if word == "tomorrow":
            return at(today + timedelta(days=1)), 0.9, match.group(0).strip()
        friday = today + timedelta(days=(4 - today.weekday()) % 7)
        return at(friday), 0.8, match.group(0).strip()
    match = _WEEKDAY.search(text)
    if match:
        target = WEEKDAYS.index(match.group(1).lower())
        ahead = (target - today.weekday()) % 7
        if "next" in match.group(0).lower() and ahead == 0:
            ahead = 7
        return at(today + timedelta(days=ahead)), 0.8, match.group(0).strip()
    for pattern, order in ((_DAY_MONTH, "dm"), (_MONTH_DAY, "md")):
        match = pattern.search(text)
        if match:
            first, second = match.groups()
            day, month = (int(first), _month_number(second)) if order == "dm" else (int(second), _month_number(first))
            found = _next_date(today, month, day)
            if found is not None:
                return at(found), 0.85, match.group(0).strip()
    match = _IN_DAYS.search(text)
    if match:
        days = int(match.group(1) or match.group(2))
        return at(today + timedelta(days=days)), 0.75, match.group(0).strip()
    return None, 0.0, ""


def _priority(text: str) -> tuple[int | None, float, str]:
    for pattern, value, confidence in ((_URGENT, Priority.URGENT, 0.9), (_HIGH, Priority.HIGH, 0.85),
                                       (_LOW, Priority.LOW, 0.85)):
        match = pattern.search(text)
        if match:
            return int(value), confidence, match.group(0)
    return None, 0.0, ""


def _assignee(text: str, request: ExtractionRequest) -> tuple[str, float, str]:
    match = _ASSIGN_EMAIL.search(text)
    if match:
        email = match.group(1).lower()
        if any(c.email.lower() == email for c in request.members):
            return email, 0.95, match.group(0)
        return "", 0.0, f"{match.group(0)!r}: no member has that address"
    match = _ASSIGN_NAME.search(text)
    if match:
        name = match.group(1).strip().lower()
        full = [c for c in request.members if c.full_name.strip().lower() == name]
        if len(full) == 1:
            return full[0].email.lower(), 0.85, match.group(0)
        first = [c for c in request.members if c.full_name.strip().lower().split(" ")[:1] == [name.split(" ")[0]]]
        if len(first) == 1:
            return first[0].email.lower(), 0.7, match.group(0)
        why = "several members have that name" if (full or first) else "no member has that name"
        return "", 0.0, f"{match.group(0)!r}: {why}"
    return "", 0.0, ""


def extract_by_rules(request: ExtractionRequest) -> ExtractedMetadata:
    """Due date, priority and assignee found by the phrases above, each with its confidence."""
    text = f"{request.subject}\n{request.text}"
    zone = _zone(request.timezone)
    due_at, due_confidence, due_phrase = _due(text, request.received_at, zone)
    priority, priority_confidence, priority_phrase = _priority(text)
    assignee, assignee_confidence, assignee_note = _assignee(text, request)
    confidences: dict[str, float] = {}
    notes: list[str] = []
    if due_at is not None:
        confidences["due_at"] = due_confidence
        notes.append(f"due from {due_phrase!r}")
    if priority is not None:
        confidences["priority"] = priority_confidence
        notes.append(f"priority from {priority_phrase!r}")
    if assignee:
        confidences["assignee"] = assignee_confidence
        notes.append(f"assignee from {assignee_note!r}")
    elif assignee_note:
        notes.append(assignee_note)
    return ExtractedMetadata(
        due_at=due_at,
        priority=priority,
        assignee=assignee,
        confidence=min(confidences.values()) if confidences else None,
        field_confidence=confidences,
        source="rules",
        notes=tuple(notes),
    )
