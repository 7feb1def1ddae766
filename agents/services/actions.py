"""Simple actions from the chat: read the parameters a model extracted, make them valid, make one tool call.

Models hand back what people say ("Dana", "tomorrow at 10", "30 minutes");
tools want addresses, ISO times and integers. :func:`action_arguments` turns
the first into the second where it can, deterministically: a name becomes the
email of the organization's member (or the person in business memory) it
names, a spoken time becomes ``YYYY-MM-DDTHH:MM`` in the organization's time
zone, a number in words becomes a number. Whatever still does not match the
tool's schema is reported per field, so the assistant can ask for it.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

from django.utils import timezone

from accounts.models import Membership, Organization, User

MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12, "jan": 1, "feb": 2, "mar": 3, "apr": 4,
    "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}
WEEKDAYS = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}
_EMAIL = re.compile(r"^[^\s<>,;:\"]+@[^\s<>,;:\"]+\.[^\s<>,;:\"]+$")
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{1,2}):(\d{2})(?::\d{2})?$")
_TIME = re.compile(r"(?:\bat\s+)?(\d{1,2})(?:[:.h](\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?\s*$", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*(\d+)\s*(?:min(?:ute)?s?|m)?\s*$", re.IGNORECASE)
_HOURS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:h|hours?)\s*$", re.IGNORECASE)
WORD_DURATIONS = {"half an hour": 30, "an hour": 60, "one hour": 60, "quarter of an hour": 15, "two hours": 120}


def _today(organization: Organization) -> date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(organization.timezone or "UTC")).date()


def _clock(text: str) -> tuple[time | None, str]:
    """The time of day at the end of ``text`` and what comes before it."""
    match = _TIME.search(text)
    if not match:
        return None, text
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    suffix = (match.group(3) or "").lower().replace(".", "")
    if suffix == "pm" and hour < 12:
        hour += 12
    if suffix == "am" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        return None, text
    return time(hour, minute), text[: match.start()].strip(" ,")


def parse_when(text: str, *, organization: Organization) -> str | None:
    """``"tomorrow 10:00"``, ``"1 March at 9am"``, ``"Monday 14:30"``, ISO → ``YYYY-MM-DDTHH:MM``; None if unsure."""
    raw = " ".join(str(text).split())
    iso = _ISO.match(raw)
    if iso:
        return f"{iso.group(1)}T{int(iso.group(2)):02d}:{iso.group(3)}"
    clock, rest = _clock(raw)
    if clock is None:
        return None
    rest = rest.lower().removeprefix("on ").strip()
    today = _today(organization)
    day: date | None = None
    if rest in ("", "today"):
        day = today
    elif rest == "tomorrow":
        day = today + timedelta(days=1)
    elif rest.removeprefix("next ") in WEEKDAYS:
        ahead = (WEEKDAYS[rest.removeprefix("next ")] - today.weekday()) % 7 or 7
        day = today + timedelta(days=ahead)
    else:
        match = re.match(r"^(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([a-z]+)\.?(?:\s+(\d{4}))?$", rest) or None
        month_first = re.match(r"^([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?$", rest)
        if match and match.group(2) in MONTHS:
            number, month, year = int(match.group(1)), MONTHS[match.group(2)], match.group(3)
        elif month_first and month_first.group(1) in MONTHS:
            number, month, year = int(month_first.group(2)), MONTHS[month_first.group(1)], month_first.group(3)
        else:
            return None
        try:
            day = date(int(year) if year else today.year, month, number)
        except ValueError:
            return None
        if not year and day < today:
            day = day.replace(year=today.year + 1)
    return f"{datetime.combine(day, clock):%Y-%m-%dT%H:%M}"


def parse_minutes(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = " ".join(str(value).lower().split())
    if text in WORD_DURATIONS:
        return WORD_DURATIONS[text]
    match = _NUMBER.match(text)
    if match:
        return int(match.group(1))
    hours = _HOURS.match(text)
    if hours:
        return int(float(hours.group(1)) * 60)
    return None


def resolve_address(name: str, *, organization: Organization) -> str | None:
    """The email address a name stands for: a member (full name, first name, address) or a person in memory."""
    text = " ".join(str(name).split())
    if _EMAIL.match(text):
        return text
    key = text.lower()
    if not key:
        return None
    members = list(Membership.objects.for_org(organization).select_related("user")
                   .values_list("user__full_name", "user__email"))
    exact = [email for full, email in members if (full or "").lower() == key]
    first = [email for full, email in members if (full or "").lower().split(" ")[:1] == [key]]
    local = [email for _, email in members if email.split("@")[0].lower() == key]
    for found in (exact, first, local):
        if len(found) == 1:
            return found[0]
    from memory.services.entities import entity_find

    entity = entity_find(organization=organization, name=text, kind="person")
    email = (entity.attributes or {}).get("email") if entity is not None else None
    return str(email) if isinstance(email, str) and _EMAIL.match(email) else None


def _is_email_schema(schema: dict[str, Any]) -> bool:
    return schema.get("format") == "email" or "@" in str(schema.get("pattern", ""))


def _is_datetime_schema(schema: dict[str, Any]) -> bool:
    return schema.get("format") == "date-time"


def _coerce(value: Any, schema: dict[str, Any], *, organization: Organization) -> Any:
    kind = schema.get("type")
    if kind == "array" and isinstance(schema.get("items"), dict):
        items = value if isinstance(value, list) else [value]
        return [_coerce(v, schema["items"], organization=organization) for v in items]
    if kind == "string" and isinstance(value, str):
        if _is_email_schema(schema):
            return resolve_address(value, organization=organization) or value
        if _is_datetime_schema(schema):
            return parse_when(value, organization=organization) or value
    if kind == "integer" and not isinstance(value, int):
        minutes = parse_minutes(value)
        return minutes if minutes is not None else value
    return value


def action_arguments(*, organization: Organization, parameters: dict[str, Any], schema: dict[str, Any]
                     ) -> dict[str, Any]:
    """The model's parameters made to fit ``schema`` where a deterministic reading allows it."""
    properties = schema.get("properties") or {}
    arguments: dict[str, Any] = {}
    for name, value in (parameters or {}).items():
        if value is None or (name not in properties and schema.get("additionalProperties") is False):
            continue
        spec = properties.get(name)
        arguments[name] = _coerce(value, spec, organization=organization) if isinstance(spec, dict) else value
    return arguments


def describe_errors(errors: dict[str, list[str]]) -> str:
    return "; ".join(f"{field}: {messages[0]}" for field, messages in sorted(errors.items()))


def member_of(organization: Organization, user: User) -> Membership | None:
    return Membership.objects.for_org(organization).select_related("organization").filter(user=user).first()
