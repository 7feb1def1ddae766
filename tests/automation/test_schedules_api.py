"""Schedules, reminders and notifications API: create, change, run now, bad input, roles, organization isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from automation.models import Notification, Reminder, Schedule, ScheduleFiring, Task
from automation.services.schedules import schedules_tick
from automation.services.schedules_reminders import reminders_tick
from tests.automation.scheduling.factories import make_reminder, make_schedule


def base(tenant, what="schedules"):
    return f"/api/v1/orgs/{tenant.slug}/{what}/"


def test_member_creates_cron_schedule_in_a_time_zone(tenant_a, client_for):
    """A member creates a cron schedule in New York time; the response shows its next run in UTC."""
    response = client_for(tenant_a.member).post(base(tenant_a), {
        "name": "Standup notes", "kind": "cron", "cron_expression": "0 9 * * 1-5", "timezone": "America/New_York",
        "task_title": "Collect standup notes", "missed_run_policy": "skip",
    }, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["timezone"] == "America/New_York"
    assert body["task"]["title"] == "Collect standup notes"
    assert body["next_run_at"].endswith(("13:00:00Z", "14:00:00Z"))  # 09:00 EDT or EST


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "cron", "cron_expression": "every monday"}, "cron_expression"),
        ({"kind": "cron", "cron_expression": "0 9 * * *", "timezone": "Europe/Atlantis"}, "timezone"),
        ({"kind": "one_off", "run_at": "2020-01-01T00:00:00Z"}, "run_at"),
        ({"kind": "interval", "interval_seconds": 0}, "interval_seconds"),
        ({"kind": "interval", "interval_seconds": 60, "task_executor": "ghost"}, "task_executor"),
        ({"kind": "interval", "interval_seconds": 60, "run_at": "not a date"}, "run_at"),
        ({"kind": "weekly"}, "kind"),
    ],
)
def test_bad_schedule_is_400_naming_the_field(tenant_a, client_for, payload, field):
    """Invalid cron, time zone, a one-off in the past, a bad interval or executor: 400 naming it, nothing stored."""
    response = client_for(tenant_a.member).post(base(tenant_a), {"name": "S", "task_title": "T", **payload},
                                                format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Schedule.objects.for_org(tenant_a.organization).exists()


def test_update_disable_and_delete(tenant_a, client_for):
    """A schedule's timing can change (next run recomputed), it can be disabled, and deleted."""
    schedule = make_schedule(tenant_a)
    client = client_for(tenant_a.member)
    detail = f"{base(tenant_a)}{schedule.pk}/"
    response = client.patch(detail, {"kind": "cron", "cron_expression": "30 6 * * *", "timezone": "UTC"},
                            format="json")
    assert response.status_code == 200, response.content
    assert response.json()["next_run_at"].endswith("06:30:00Z")
    response = client.patch(detail, {"cron_expression": "bad"}, format="json")
    assert response.status_code == 400
    assert client.patch(detail, {"enabled": False}, format="json").json()["enabled"] is False
    assert client.delete(detail).status_code == 204
    assert not Schedule.objects.for_org(tenant_a.organization).exists()


def test_run_now_and_firings(tenant_a, client_for):
    """run-now creates the task at once; firings lists what the ticker fired."""
    soon = timezone.now() + timedelta(seconds=30)
    schedule = make_schedule(tenant_a, run_at=soon)
    client = client_for(tenant_a.member)
    response = client.post(f"{base(tenant_a)}{schedule.pk}/run-now/", {})
    assert response.status_code == 201
    assert Task.objects.for_org(tenant_a.organization).filter(pk=response.json()["task"]).exists()
    schedules_tick(now=soon + timedelta(seconds=1))
    firings = client.get(f"{base(tenant_a)}{schedule.pk}/firings/").json()["results"]
    assert len(firings) == 1
    assert firings[0]["task"] is not None


def test_viewer_reads_but_cannot_write(tenant_a, client_for):
    """A viewer lists schedules but cannot create, change or run them."""
    schedule = make_schedule(tenant_a)
    viewer = client_for(tenant_a.viewer)
    assert viewer.get(base(tenant_a)).status_code == 200
    assert viewer.post(base(tenant_a), {"name": "x", "kind": "interval", "interval_seconds": 60,
                                        "task_title": "t"}, format="json").status_code == 403
    assert viewer.patch(f"{base(tenant_a)}{schedule.pk}/", {"name": "y"}, format="json").status_code == 403
    assert viewer.post(f"{base(tenant_a)}{schedule.pk}/run-now/", {}).status_code == 403


def test_other_organization_gets_404_for_schedules(tenants, client_for):
    """Another organization's member gets 404 for every schedule route; nothing changes or fires."""
    a, b = tenants
    schedule = make_schedule(a)
    intruder = client_for(b.owner)
    assert intruder.get(base(a)).status_code == 404
    assert intruder.post(base(a), {"name": "x", "kind": "interval", "interval_seconds": 60, "task_title": "t"},
                         format="json").status_code == 404
    for tenant in (a, b):
        detail = f"{base(tenant)}{schedule.pk}/"
        assert intruder.get(detail).status_code == 404
        assert intruder.patch(detail, {"name": "pwned"}, format="json").status_code == 404
        assert intruder.post(detail + "run-now/", {}).status_code == 404
        assert intruder.get(detail + "firings/").status_code == 404
        assert intruder.delete(detail).status_code == 404
    schedule.refresh_from_db()
    assert schedule.name == "Hourly"
    assert not Task.objects.dangerously_unscoped().exists()
    assert not Schedule.objects.for_org(b.organization).exists()


# --- reminders and notifications -----------------------------------------------------------


def test_reminder_delivers_notification_once(tenant_a, client_for):
    """A one-off reminder becomes one in-app notification for its user; ticking again sends nothing more."""
    client = client_for(tenant_a.member)
    when = timezone.now() + timedelta(minutes=30)
    response = client.post(base(tenant_a, "reminders"), {"title": "Call the bank", "run_at": when.isoformat()},
                           format="json")
    assert response.status_code == 201, response.content
    assert reminders_tick(now=when + timedelta(seconds=3)).fired == 1
    assert reminders_tick(now=when + timedelta(minutes=5)).fired == 0
    inbox = client.get(base(tenant_a, "notifications"), {"unread": "true"}).json()["results"]
    assert [n["title"] for n in inbox] == ["Call the bank"]
    assert client.post(f"{base(tenant_a, 'notifications')}{inbox[0]['id']}/read/", {}).json()["read_at"]
    assert client.get(base(tenant_a, "notifications"), {"unread": "true"}).json()["results"] == []


def test_recurring_reminder_every_weekday_morning(tenant_a):
    """A cron reminder sends one notification per firing, in the reminder's time zone."""
    start = timezone.now().replace(microsecond=0)
    reminder = make_reminder(tenant_a, kind="interval", interval_seconds=3600, run_at=start + timedelta(hours=1),
                             now=start)
    for hours in (1, 2, 3):
        reminders_tick(now=start + timedelta(hours=hours, seconds=1))
    assert Notification.objects.for_org(tenant_a.organization).filter(reminder=reminder).count() == 3


def test_reminder_bad_input(tenant_a, client_for):
    """A reminder in the past, or of an unknown kind, is a 400 naming the field."""
    client = client_for(tenant_a.member)
    response = client.post(base(tenant_a, "reminders"), {"title": "x", "run_at": "2001-01-01T00:00:00Z"},
                           format="json")
    assert response.status_code == 400
    assert "run_at" in response.json()
    response = client.post(base(tenant_a, "reminders"), {"title": "x", "kind": "event"}, format="json")
    assert response.status_code == 400
    assert "kind" in response.json()


def test_people_see_only_their_own_reminders_and_notifications(tenant_a, client_for):
    """A member sees only their reminders and notifications, not a colleague's (404 on the colleague's)."""
    mine = make_reminder(tenant_a, user=tenant_a.member)
    theirs = make_reminder(tenant_a, user=tenant_a.manager, title="Manager's")
    note = Notification.objects.for_org(tenant_a.organization).create(
        organization=tenant_a.organization, user=tenant_a.manager, title="Private")
    client = client_for(tenant_a.member)
    assert [r["id"] for r in client.get(base(tenant_a, "reminders")).json()["results"]] == [mine.pk]
    assert client.get(f"{base(tenant_a, 'reminders')}{theirs.pk}/").status_code == 404
    assert client.delete(f"{base(tenant_a, 'reminders')}{theirs.pk}/").status_code == 404
    assert client.post(f"{base(tenant_a, 'notifications')}{note.pk}/read/", {}).status_code == 404
    assert Reminder.objects.for_org(tenant_a.organization).filter(pk=theirs.pk).exists()


def test_other_organization_gets_404_for_reminders(tenants, client_for):
    """Another organization's member gets 404 for reminders and notifications; nothing changes."""
    a, b = tenants
    reminder = make_reminder(a, user=a.member)
    intruder = client_for(b.owner)
    assert intruder.get(base(a, "reminders")).status_code == 404
    assert intruder.get(base(a, "notifications")).status_code == 404
    assert intruder.post(base(a, "notifications") + "read-all/", {}).status_code == 404
    for tenant in (a, b):
        assert intruder.patch(f"{base(tenant, 'reminders')}{reminder.pk}/", {"title": "x"},
                              format="json").status_code == 404
    reminder.refresh_from_db()
    assert reminder.title == "Call the bank"
    assert not ScheduleFiring.objects.dangerously_unscoped().exists()
