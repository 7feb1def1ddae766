"""calendar_invite and calendar_cancel: iCalendar (RFC 5545) meeting requests sent by email.

An invitation carries a VTIMEZONE for the meeting's zone (the zone's real
transitions in the meeting's year), so clients show the local time the
organizer meant. Its compensation, and ``calendar_cancel``, send a
METHOD:CANCEL for the same UID with a higher SEQUENCE.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from tools.builtin.mail import send, sender
from tools.context import ToolContext
from tools.errors import ToolFailed
from tools.registry import ApprovalPolicy, Tool
from tools.types import Outcome, SideEffect

PRODID = "-//Staffer//Tools//EN"
ADDRESS = {"type": "string", "format": "email", "maxLength": 254,
           "pattern": r"^[^\s<>,;:\"]+@[^\s<>,;:\"]+\.[^\s<>,;:\"]+$"}

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "start": {"type": "string", "format": "date-time",
                  "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$",
                  "description": "Local start time in the meeting's time zone, e.g. 2026-03-01T09:00."},
        "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 24 * 60},
        "timezone": {"type": "string", "maxLength": 64, "description": "IANA zone; the organization's by default."},
        "attendees": {"type": "array", "items": ADDRESS, "minItems": 1, "maxItems": 100},
        "location": {"type": "string", "maxLength": 300},
        "description": {"type": "string", "maxLength": 5000},
    },
    "required": ["title", "start", "duration_minutes", "attendees"],
    "additionalProperties": False,
}


# --- iCalendar text ---------------------------------------------------------------------------


def escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace("\n", "\\n")
    )


def fold(line: str) -> str:
    """Fold a content line at 75 octets (RFC 5545 §3.1)."""
    encoded = line.encode()
    if len(encoded) <= 75:
        return line
    parts, current = [], b""
    for char in line:
        piece = char.encode()
        if len(current) + len(piece) > (75 if not parts else 74):
            parts.append(current.decode())
            current = b""
        current += piece
    parts.append(current.decode())
    return "\r\n ".join(parts)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _local(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def _offset(delta: timedelta | None) -> str:
    seconds = int((delta or timedelta(0)).total_seconds())
    sign = "+" if seconds >= 0 else "-"
    seconds = abs(seconds)
    return f"{sign}{seconds // 3600:02d}{seconds % 3600 // 60:02d}"


def _transitions(zone: zoneinfo.ZoneInfo, year: int) -> list[datetime]:
    """UTC instants in ``year`` at which ``zone`` changes its offset (found by bisection)."""
    found = []
    start = datetime(year, 1, 1, tzinfo=UTC)
    previous = start.astimezone(zone).utcoffset()
    step = timedelta(days=1)
    moment = start
    while moment.year == year:
        following = moment + step
        offset = following.astimezone(zone).utcoffset()
        if offset != previous:
            low, high = moment, following
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == previous:
                    low = middle
                else:
                    high = middle
            found.append(high.replace(second=0, microsecond=0))
            previous = offset
        moment = following
    return found


def vtimezone(zone: zoneinfo.ZoneInfo, years: set[int]) -> list[str]:
    """A VTIMEZONE with the zone's offsets in ``years``."""
    lines = ["BEGIN:VTIMEZONE", f"TZID:{zone.key}"]
    changes = [change for year in sorted(years) for change in _transitions(zone, year)]
    if not changes:
        year = min(years)
        moment = datetime(year, 1, 1, tzinfo=UTC).astimezone(zone)
        offset = _offset(moment.utcoffset())
        lines += ["BEGIN:STANDARD", f"DTSTART:{year}0101T000000", f"TZOFFSETFROM:{offset}", f"TZOFFSETTO:{offset}",
                  f"TZNAME:{moment.tzname()}", "END:STANDARD"]
    for change in changes:
        before = (change - timedelta(minutes=1)).astimezone(zone)
        after = change.astimezone(zone)
        kind = "DAYLIGHT" if after.dst() else "STANDARD"
        local_start = change.astimezone(zone).replace(tzinfo=None) - ((after.utcoffset() or timedelta(0))
                                                                    - (before.utcoffset() or timedelta(0)))
        lines += [f"BEGIN:{kind}", f"DTSTART:{_local(local_start)}", f"TZOFFSETFROM:{_offset(before.utcoffset())}",
                  f"TZOFFSETTO:{_offset(after.utcoffset())}", f"TZNAME:{after.tzname()}", f"END:{kind}"]
    lines.append("END:VTIMEZONE")
    return lines


def build_ics(
    *,
    method: str,
    uid: str,
    sequence: int,
    title: str,
    start: datetime,
    end: datetime,
    organizer: str,
    organizer_name: str,
    attendees: list[str],
    location: str = "",
    description: str = "",
) -> str:
    zone = start.tzinfo
    assert isinstance(zone, zoneinfo.ZoneInfo)
    lines = ["BEGIN:VCALENDAR", f"PRODID:{PRODID}", "VERSION:2.0", "CALSCALE:GREGORIAN", f"METHOD:{method}"]
    lines += vtimezone(zone, {start.year, end.year})
    lines += [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"SEQUENCE:{sequence}",
        f"DTSTAMP:{_stamp(datetime.now(UTC))}",
        f"DTSTART;TZID={zone.key}:{_local(start)}",
        f"DTEND;TZID={zone.key}:{_local(end)}",
        f"SUMMARY:{escape(title)}",
        f"ORGANIZER;CN={escape(organizer_name)}:mailto:{organizer}",
    ]
    role = "REQ-PARTICIPANT"
    for attendee in attendees:
        lines.append(f"ATTENDEE;ROLE={role};PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{attendee}")
    if location:
        lines.append(f"LOCATION:{escape(location)}")
    if description:
        lines.append(f"DESCRIPTION:{escape(description)}")
    lines.append("STATUS:CANCELLED" if method == "CANCEL" else "STATUS:CONFIRMED")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(fold(line) for line in lines) + "\r\n"


# --- sending ----------------------------------------------------------------------------------


def _zone(ctx: ToolContext, name: str | None) -> zoneinfo.ZoneInfo:
    key = name or ctx.organization.timezone or "UTC"
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ToolFailed(f"{key!r} is not an IANA time zone", code="invalid_arguments") from exc


def _organizer(ctx: ToolContext) -> tuple[str, str]:
    address = getattr(settings, "TOOLS_EMAIL_FROM", "") or settings.DEFAULT_FROM_EMAIL
    return address.split("<")[-1].rstrip(">").strip(), ctx.organization.name


def _mail(ctx: ToolContext, *, subject: str, body: str, ics: str, method: str, attendees: list[str]) -> None:
    message = EmailMultiAlternatives(subject=subject, body=body, from_email=sender(ctx), to=attendees,
                                     reply_to=[ctx.actor.email] if ctx.actor else [])
    message.attach_alternative(ics, f"text/calendar; method={method}; charset=utf-8")
    message.attach("invite.ics" if method == "REQUEST" else "cancel.ics", ics.encode(),
                   f"application/ics; method={method}")
    send(ctx, message)


def calendar_invite(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    zone = _zone(ctx, args.get("timezone"))
    naive = datetime.fromisoformat(args["start"])
    start = naive.replace(tzinfo=zone)
    if start.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise ToolFailed(f"{args['start']} does not exist in {zone.key} (a clock change skips it)",
                         code="invalid_arguments")
    end = start + timedelta(minutes=args["duration_minutes"])
    domain = _organizer(ctx)[0].rsplit("@", 1)[-1]
    uid = f"staffer-{ctx.organization.pk}-{ctx.tool_call_id}@{domain}"
    organizer, organizer_name = _organizer(ctx)
    event = {
        "uid": uid,
        "sequence": 0,
        "title": args["title"],
        "start": start.isoformat(),
        "end": end.isoformat(),
        "start_utc": start.astimezone(UTC).isoformat(),
        "timezone": zone.key,
        "attendees": list(args["attendees"]),
        "location": args.get("location", ""),
    }
    ics = build_ics(method="REQUEST", uid=uid, sequence=0, title=args["title"], start=start, end=end,
                    organizer=organizer, organizer_name=organizer_name, attendees=args["attendees"],
                    location=args.get("location", ""), description=args.get("description", ""))
    when = f"{start.strftime('%A %d %B %Y, %H:%M')}–{end.strftime('%H:%M')} ({zone.key})"
    body = f"{args['title']}\n{when}\n" + (f"Where: {args['location']}\n" if args.get("location") else "")
    body += f"\n{args.get('description', '')}".rstrip() + "\n"
    _mail(ctx, subject=f"Invitation: {args['title']}", body=body, ics=ics, method="REQUEST",
          attendees=args["attendees"])
    return event


def cancel_event(ctx: ToolContext, event: dict[str, Any], *, reason: str = "") -> dict[str, Any]:
    zone = zoneinfo.ZoneInfo(event["timezone"])
    start = datetime.fromisoformat(event["start"]).astimezone(zone)
    end = datetime.fromisoformat(event["end"]).astimezone(zone)
    organizer, organizer_name = _organizer(ctx)
    sequence = int(event.get("sequence", 0)) + 1
    ics = build_ics(method="CANCEL", uid=event["uid"], sequence=sequence, title=event["title"], start=start,
                    end=end, organizer=organizer, organizer_name=organizer_name, attendees=event["attendees"],
                    location=event.get("location", ""), description=reason)
    body = f"Cancelled: {event['title']} ({start.strftime('%A %d %B %Y, %H:%M')}, {zone.key})\n"
    if reason:
        body += f"\n{reason}\n"
    _mail(ctx, subject=f"Cancelled: {event['title']}", body=body, ics=ics, method="CANCEL",
          attendees=event["attendees"])
    return {"uid": event["uid"], "sequence": sequence, "cancelled": True}


def calendar_uninvite(ctx: ToolContext, args: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Compensation of an invitation: send its cancellation."""
    return cancel_event(ctx, result, reason="This meeting was cancelled.")


def calendar_cancel(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    from tools.models import ToolCall

    invite = (
        ToolCall.objects.for_org(ctx.organization)
        .filter(tool_name="calendar_invite", outcome=Outcome.SUCCEEDED, result__uid=args["uid"])
        .first()
    )
    if invite is None:
        raise ToolFailed("no invitation with that UID was sent by this organization", code="not_found")
    return cancel_event(ctx, invite.result, reason=args.get("reason", ""))


def _invite_recipients(args: dict[str, Any]) -> list[str]:
    return list(args.get("attendees", []))


CALENDAR_INVITE = Tool(
    name="calendar_invite",
    title="Send a meeting invitation",
    description=(
        "Invite attendees to a meeting: an iCalendar invitation by email, with the meeting's time zone. "
        "Invitations to people outside the organization wait for approval."
    ),
    parameters=PARAMETERS,
    handler=calendar_invite,
    compensation=calendar_uninvite,
    side_effect=SideEffect.EXTERNAL,
    approval=ApprovalPolicy(outside_domains=True),
    recipients=_invite_recipients,
    timeout=60,
)
CALENDAR_CANCEL = Tool(
    name="calendar_cancel",
    title="Cancel a meeting",
    description="Cancel a meeting this organization sent, by its UID; attendees get a cancellation.",
    parameters={
        "type": "object",
        "properties": {"uid": {"type": "string", "maxLength": 300}, "reason": {"type": "string", "maxLength": 2000}},
        "required": ["uid"],
        "additionalProperties": False,
    },
    handler=calendar_cancel,
    side_effect=SideEffect.EXTERNAL,
    timeout=60,
)
