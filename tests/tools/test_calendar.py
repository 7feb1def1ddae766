"""calendar_invite / calendar_cancel: iCalendar invitations by email with time zones; cancellation on rollback."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from tools.builtin.calendar import fold, vtimezone
from tools.services.compensation import compensate_group
from tools.services.invocation import invoke_tool
from tools.types import InvocationContext, Outcome

pytestmark = pytest.mark.django_db


def _invite(tenant, context=None, **extra):
    arguments = {"title": "Onboarding: day one", "start": "2026-03-02T09:00", "duration_minutes": 60,
                 "timezone": "Europe/Berlin", "attendees": ["dana@acme.test", "owner@acme.test"],
                 "location": "Room 1, Berlin", "description": "Welcome; laptop, badge"}
    arguments.update(extra)
    return invoke_tool(organization=tenant.organization, actor=tenant.manager, tool_name="calendar_invite",
                       arguments=arguments, context=context)


def _ics(message):
    for content, mimetype in message.alternatives:
        if mimetype.startswith("text/calendar"):
            return content
    raise AssertionError("no calendar part")


def _unfold(ics):
    return ics.replace("\r\n ", "")


def test_invitation_is_a_valid_request_with_time_zone(tenant_a):
    """Attendees get a METHOD:REQUEST with the Berlin zone, local times, attendees and escaped text."""
    result = _invite(tenant_a)
    assert result.ok, result.reason
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["dana@acme.test", "owner@acme.test"]
    ics = _unfold(_ics(message))
    assert "METHOD:REQUEST" in ics
    assert "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin" in ics
    assert "DTSTART;TZID=Europe/Berlin:20260302T090000" in ics
    assert "DTEND;TZID=Europe/Berlin:20260302T100000" in ics
    assert "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:dana@acme.test" in ics
    assert "LOCATION:Room 1\\, Berlin" in ics
    assert "DESCRIPTION:Welcome\\; laptop\\, badge" in ics
    assert f"UID:{result.result['uid']}" in ics
    assert result.result["start_utc"] == "2026-03-02T08:00:00+00:00"
    for line in _ics(message).split("\r\n"):
        assert len(line.encode()) <= 75


def test_vtimezone_has_the_real_transitions():
    """Berlin's 2026 changes (29 March, 25 October) appear with the right offsets."""
    import zoneinfo

    lines = vtimezone(zoneinfo.ZoneInfo("Europe/Berlin"), {2026})
    text = "\n".join(lines)
    assert "BEGIN:DAYLIGHT\nDTSTART:20260329T020000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0200\nTZNAME:CEST" in text
    assert "BEGIN:STANDARD\nDTSTART:20261025T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nTZNAME:CET" in text


def test_default_zone_is_the_organizations(tenant_a):
    """Without a time zone the organization's is used."""
    tenant_a.organization.timezone = "America/New_York"
    tenant_a.organization.save()
    result = invoke_tool(
        organization=tenant_a.organization, actor=tenant_a.manager, tool_name="calendar_invite",
        arguments={"title": "Sync", "start": "2026-07-01T10:00", "duration_minutes": 30,
                   "attendees": ["dana@acme.test"]})
    assert result.ok, result.reason
    assert result.result["timezone"] == "America/New_York"
    assert result.result["start_utc"] == "2026-07-01T14:00:00+00:00"


def test_nonexistent_local_time_refused(tenant_a):
    """A start inside the spring-forward gap is refused instead of silently shifted."""
    result = _invite(tenant_a, start="2026-03-29T02:30")
    assert result.outcome == Outcome.FAILED
    assert "does not exist" in result.reason
    assert mail.outbox == []


def test_outside_attendee_needs_approval(tenant_a):
    """Inviting someone outside the organization waits for approval."""
    result = _invite(tenant_a, attendees=["maria.lopez@gmail.com"])
    assert result.outcome == Outcome.NEEDS_APPROVAL
    assert mail.outbox == []


def test_rollback_sends_cancellation(tenant_a):
    """Compensating the invitation sends METHOD:CANCEL for the same UID with a higher sequence."""
    result = _invite(tenant_a, context=InvocationContext(group="onboarding-1"))
    report = compensate_group(organization=tenant_a.organization, group="onboarding-1", actor=tenant_a.manager)
    assert report.compensated == [result.tool_call.pk]
    assert len(mail.outbox) == 2
    cancel = _unfold(_ics(mail.outbox[1]))
    assert "METHOD:CANCEL" in cancel
    assert f"UID:{result.result['uid']}" in cancel
    assert "SEQUENCE:1" in cancel
    assert "STATUS:CANCELLED" in cancel
    assert mail.outbox[1].subject == "Cancelled: Onboarding: day one"


def test_cancel_by_uid_and_unknown_uid(tenant_a):
    """calendar_cancel finds the organization's invitation by UID; an unknown UID fails."""
    sent = _invite(tenant_a)
    cancelled = invoke_tool(organization=tenant_a.organization, actor=tenant_a.manager, tool_name="calendar_cancel",
                            arguments={"uid": sent.result["uid"], "reason": "moved"})
    assert cancelled.ok
    assert re.search("METHOD:CANCEL", _ics(mail.outbox[-1]))
    unknown = invoke_tool(organization=tenant_a.organization, actor=tenant_a.manager, tool_name="calendar_cancel",
                          arguments={"uid": "nope@x"})
    assert unknown.code == "not_found"


def test_fold_keeps_multibyte_characters_whole():
    """Folding never splits a UTF-8 character."""
    line = "SUMMARY:" + "é" * 80
    folded = fold(line)
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == line
