"""Schedule pages: create cron, interval, one-off and event schedules; next runs shown; service errors shown."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from accounts.models import AuditEvent
from automation.models import Schedule, Task
from automation.services.schedules import schedule_create

pytestmark = pytest.mark.django_db

TEMPLATE = {"task_title": "Write the weekly report", "task_description": "", "task_executor": "noop",
            "task_execution_type": "fully_automated", "task_priority": "50", "missed_run_policy": "run_once",
            "enabled": "on"}


def _times(html: str) -> list[str]:
    block = html[html.index('class="next-runs"'):]
    block = block[:block.index("</ol>")]
    return re.findall(r'<time datetime="([^"]+)"', block)


def _schedules(tenant) -> list[Schedule]:
    return list(Schedule.objects.for_org(tenant.organization))


def test_a_cron_schedule_is_created_and_shows_its_next_ten_runs(tenant_a, page_for):
    """A weekly cron in Berlin time is saved; its page lists the next ten Mondays at 09:00 Berlin time."""
    client = page_for(tenant_a.member)
    response = client.post(f"/orgs/{tenant_a.slug}/schedules/new/cron/", {
        **TEMPLATE, "name": "Weekly report", "cron_expression": "0 9 * * 1", "timezone": "Europe/Berlin"})
    schedule = Schedule.objects.for_org(tenant_a.organization).get()
    assert response.status_code == 302
    assert response["Location"] == f"/orgs/{tenant_a.slug}/schedules/{schedule.pk}/"
    assert (schedule.kind, schedule.cron_expression, schedule.timezone) == ("cron", "0 9 * * 1", "Europe/Berlin")
    assert AuditEvent.objects.for_org(tenant_a.organization).filter(action="schedule.created").count() == 1
    html = client.get(response["Location"]).content.decode()
    runs = [datetime.fromisoformat(t) for t in _times(html)]
    assert len(runs) == 10
    berlin = [run.astimezone(ZoneInfo("Europe/Berlin")) for run in runs]
    assert all(b.weekday() == 0 and (b.hour, b.minute) == (9, 0) for b in berlin)
    assert all(later.date() - earlier.date() == timedelta(days=7) for earlier, later in pairwise(berlin))


def test_the_preview_shows_next_runs_and_saves_nothing(tenant_a, page_for):
    """Preview computes the next five runs with the service's own check; no schedule is stored."""
    client = page_for(tenant_a.member)
    response = client.post(f"/orgs/{tenant_a.slug}/schedules/new/interval/", {
        **TEMPLATE, "name": "Sync", "every": "6", "unit": "hours", "first_run": "2031-01-01T00:00",
        "timezone": "UTC", "preview": "1"})
    assert response.status_code == 200
    assert _times(response.content.decode()) == [
        f"2031-01-01T{hour:02d}:00:00+00:00" for hour in (0, 6, 12, 18)] + ["2031-01-02T00:00:00+00:00"]
    assert _schedules(tenant_a) == []


def test_interval_one_off_and_event_schedules(tenant_a, page_for):
    """The other three kinds are created from their own forms with the values the service expects."""
    client = page_for(tenant_a.member)
    base = f"/orgs/{tenant_a.slug}/schedules/new"
    assert client.post(f"{base}/interval/", {**TEMPLATE, "name": "Every 15 min", "every": "15", "unit": "minutes",
                                             "timezone": "UTC"}).status_code == 302
    assert client.post(f"{base}/one_off/", {**TEMPLATE, "name": "Launch", "run_at": "2031-03-01T09:30",
                                            "timezone": "America/New_York"}).status_code == 302
    assert client.post(f"{base}/event/", {**TEMPLATE, "name": "On paid invoice", "event_name": "invoice.paid"
                                          }).status_code == 302
    by_name = {s.name: s for s in _schedules(tenant_a)}
    assert by_name["Every 15 min"].interval_seconds == 900
    assert by_name["Launch"].run_at == datetime(2031, 3, 1, 14, 30, tzinfo=UTC)
    assert by_name["On paid invoice"].event_name == "invoice.paid"
    assert by_name["On paid invoice"].next_run_at is None
    listing = client.get(f"/orgs/{tenant_a.slug}/schedules/").content.decode()
    assert "When <code>invoice.paid</code> fires" in listing
    assert '<time datetime="2031-03-01T09:30:00-05:00">' in listing or "2031-03-01T14:30:00+00:00" in listing


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("cron", {"cron_expression": "61 * * * *", "timezone": "UTC"}, "is not a valid cron expression"),
        ("cron", {"cron_expression": "0 9 * *", "timezone": "UTC"}, "is not a five-field cron expression"),
        ("cron", {"cron_expression": "0 9 * * *", "timezone": "Mars/Olympus"}, "is not an IANA time zone"),
        ("interval", {"every": "5", "unit": "minutes", "timezone": "UTC", "first_run": "2001-01-01T00:00"}, None),
        ("one_off", {"run_at": "2001-01-01T00:00", "timezone": "UTC"}, "is in the past"),
        ("event", {"event_name": "Invoice Paid!"}, "an event schedule needs event_name"),
    ],
)
def test_service_errors_are_shown_on_the_form_and_nothing_is_saved(tenant_a, page_for, kind, data, message):
    """Invalid timing answers 400 with the service's message on the field; no schedule is stored."""
    client = page_for(tenant_a.member)
    response = client.post(f"/orgs/{tenant_a.slug}/schedules/new/{kind}/", {**TEMPLATE, "name": "X", **data})
    if message is None:  # an interval may start in the past: it is valid and is created
        assert response.status_code == 302
        return
    assert response.status_code == 400
    assert message in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert _schedules(tenant_a) == []


def test_a_viewer_sees_schedules_but_cannot_create_or_change_them(tenant_a, page_for):
    """A viewer reads the list and a schedule; creating, pausing, running and deleting are 403 and change nothing."""
    schedule = schedule_create(organization=tenant_a.organization, actor=tenant_a.owner, name="Daily",
                               kind="cron", cron_expression="0 6 * * *", task_title="Check")
    client = page_for(tenant_a.viewer)
    assert client.get(f"/orgs/{tenant_a.slug}/schedules/").status_code == 200
    assert client.get(f"/orgs/{tenant_a.slug}/schedules/{schedule.pk}/").status_code == 200
    assert client.get(f"/orgs/{tenant_a.slug}/schedules/new/cron/").status_code == 403
    assert client.post(f"/orgs/{tenant_a.slug}/schedules/new/cron/", {
        **TEMPLATE, "name": "Mine", "cron_expression": "0 9 * * 1", "timezone": "UTC"}).status_code == 403
    for action in ("enabled", "run-now", "delete"):
        assert client.post(f"/orgs/{tenant_a.slug}/schedules/{schedule.pk}/{action}/",
                           {"enabled": "0"}).status_code == 403
    schedule.refresh_from_db()
    assert schedule.enabled
    assert len(_schedules(tenant_a)) == 1
    assert not Task.objects.for_org(tenant_a.organization).exists()


def test_pause_run_now_and_delete(tenant_a, page_for):
    """A member pauses (no next runs shown), runs now (a task is created) and deletes a schedule."""
    schedule = schedule_create(organization=tenant_a.organization, actor=tenant_a.owner, name="Daily",
                               kind="cron", cron_expression="0 6 * * *", task_title="Check the backups")
    client = page_for(tenant_a.member)
    base = f"/orgs/{tenant_a.slug}/schedules/{schedule.pk}"
    client.post(f"{base}/enabled/", {"enabled": "0"})
    schedule.refresh_from_db()
    assert not schedule.enabled
    assert "Paused: no runs until it is enabled again" in client.get(f"{base}/").content.decode()
    response = client.post(f"{base}/run-now/")
    task = Task.objects.for_org(tenant_a.organization).get()
    assert response["Location"] == f"/orgs/{tenant_a.slug}/tasks/{task.pk}/"
    assert task.title == "Check the backups"
    assert task.source == "schedule"
    client.post(f"{base}/delete/")
    assert _schedules(tenant_a) == []


def test_other_organizations_schedules_are_404_and_unchanged(tenants, page_for):
    """Another organization's slug or schedule ids answer 404; POSTs to them change nothing."""
    a, b = tenants
    theirs = schedule_create(organization=b.organization, actor=b.owner, name="Globex payroll", kind="cron",
                             cron_expression="0 6 * * *", task_title="Payroll")
    client = page_for(a.owner)
    for url in [f"/orgs/{b.slug}/schedules/", f"/orgs/{b.slug}/schedules/new/cron/",
                f"/orgs/{a.slug}/schedules/{theirs.pk}/", f"/orgs/{b.slug}/schedules/{theirs.pk}/"]:
        assert client.get(url).status_code == 404, url
    for slug in (a.slug, b.slug):
        for action in ("enabled", "run-now", "delete"):
            assert client.post(f"/orgs/{slug}/schedules/{theirs.pk}/{action}/", {"enabled": "0"}).status_code == 404
    assert client.post(f"/orgs/{b.slug}/schedules/new/cron/", {
        **TEMPLATE, "name": "Mine", "cron_expression": "0 9 * * 1", "timezone": "UTC"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.enabled
    assert _schedules(b) == [theirs]
    assert not Task.objects.for_org(b.organization).exists()
    assert _schedules(a) == []
    assert "Globex payroll" not in client.get(f"/orgs/{a.slug}/schedules/").content.decode()


def test_list_queries_do_not_grow_with_the_number_of_schedules(tenant_a, page_for):
    """The schedule list (with next runs computed for each) runs the same queries for 2 schedules as for 15."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def add(count: int, offset: int) -> None:
        for index in range(offset, offset + count):
            schedule_create(organization=tenant_a.organization, actor=tenant_a.owner, name=f"S{index}",
                            kind="interval" if index % 2 else "cron", cron_expression="0 6 * * *",
                            interval_seconds=3600, task_title="Check")

    client = page_for(tenant_a.viewer)
    add(2, 0)
    client.get(f"/orgs/{tenant_a.slug}/schedules/")
    with CaptureQueriesContext(connection) as few:
        client.get(f"/orgs/{tenant_a.slug}/schedules/")
    add(13, 2)
    with CaptureQueriesContext(connection) as many:
        html = client.get(f"/orgs/{tenant_a.slug}/schedules/").content.decode()
    assert len(many) == len(few)
    assert html.count('<ol class="next-runs">') == 15
