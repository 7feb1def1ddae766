"""Schedules with an injected clock: cron across DST changes, intervals, one-off times, missed-run policies."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest

from accounts.errors import InvalidInput
from accounts.models import AuditEvent
from automation.models import Schedule, ScheduleFiring, Task, TaskSource
from automation.services import schedules_clock as clock
from automation.services.schedules import schedule_create, schedule_update, schedules_tick


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(moment: datetime, tz: str) -> str:
    return moment.astimezone(zoneinfo.ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def fire_times(timing: clock.Timing, start: datetime, count: int) -> list[datetime]:
    found, moment = [], start
    for _ in range(count):
        moment = timing.next_after(moment)
        found.append(moment)
    return found


# --- the clock -------------------------------------------------------------------------


def test_daily_cron_new_york_spring_forward():
    """A daily 02:30 New York job fires once on the night 02:00-03:00 is skipped, at 03:30 EDT, then 02:30 again."""
    timing = clock.Timing(kind="cron", cron_expression="30 2 * * *", timezone="America/New_York")
    times = fire_times(timing, utc(2026, 3, 7, 12), 3)
    assert [local(t, "America/New_York") for t in times] == [
        "2026-03-08 03:30 EDT", "2026-03-09 02:30 EDT", "2026-03-10 02:30 EDT",
    ]
    assert times[0] == utc(2026, 3, 8, 7, 30)


def test_daily_cron_new_york_fall_back():
    """A daily 01:30 New York job fires once on the night 01:00-02:00 repeats (the first 01:30), not twice."""
    timing = clock.Timing(kind="cron", cron_expression="30 1 * * *", timezone="America/New_York")
    times = fire_times(timing, utc(2026, 10, 31, 12), 3)
    assert [local(t, "America/New_York") for t in times] == [
        "2026-11-01 01:30 EDT", "2026-11-02 01:30 EST", "2026-11-03 01:30 EST",
    ]
    assert [t.hour for t in times] == [5, 6, 6]  # UTC shifts by the hour the clocks moved


def test_daily_cron_berlin_spring_forward():
    """A daily 02:30 Berlin job fires at 03:30 CEST on the last Sunday of March, then 02:30 CEST."""
    timing = clock.Timing(kind="cron", cron_expression="30 2 * * *", timezone="Europe/Berlin")
    times = fire_times(timing, utc(2026, 3, 28, 12), 2)
    assert [local(t, "Europe/Berlin") for t in times] == ["2026-03-29 03:30 CEST", "2026-03-30 02:30 CEST"]


def test_cron_berlin_fall_back_fires_each_wall_clock_time_once():
    """Every 30 minutes across Berlin's fall-back night: each local wall-clock time fires once, in order."""
    timing = clock.Timing(kind="cron", cron_expression="*/30 * * * *", timezone="Europe/Berlin")
    times = fire_times(timing, utc(2026, 10, 24, 23, 15), 6)  # 01:15 CEST
    assert [local(t, "Europe/Berlin") for t in times] == [
        "2026-10-25 01:30 CEST", "2026-10-25 02:00 CEST", "2026-10-25 02:30 CEST",
        "2026-10-25 03:00 CET", "2026-10-25 03:30 CET", "2026-10-25 04:00 CET",
    ]
    assert times == sorted(times)
    assert len(set(times)) == len(times)


def test_cron_new_york_spring_forward_never_goes_backwards():
    """Every 15 minutes across New York's spring-forward gap: strictly increasing UTC times, no duplicates."""
    timing = clock.Timing(kind="cron", cron_expression="*/15 * * * *", timezone="America/New_York")
    times = fire_times(timing, utc(2026, 3, 8, 6, 20), 8)  # 01:20 EST
    assert times == sorted(set(times))
    assert local(times[0], "America/New_York") == "2026-03-08 01:30 EST"
    assert local(times[2], "America/New_York") == "2026-03-08 03:00 EDT"


def test_monday_9am_in_berlin_stays_9am_across_dst():
    """'0 9 * * 1' in Berlin fires at 09:00 local both sides of the change (08:00 then 07:00 UTC)."""
    timing = clock.Timing(kind="cron", cron_expression="0 9 * * 1", timezone="Europe/Berlin")
    times = fire_times(timing, utc(2026, 3, 20), 2)
    assert [t.hour for t in times] == [8, 7]
    assert [local(t, "Europe/Berlin") for t in times] == ["2026-03-23 09:00 CET", "2026-03-30 09:00 CEST"]


def test_interval_and_one_off_timing():
    """An interval counts from its anchor in UTC; a one-off fires once."""
    interval = clock.Timing(kind="interval", interval_seconds=600, anchor=utc(2026, 1, 1, 0, 0))
    assert interval.next_after(utc(2026, 1, 1, 0, 25)) == utc(2026, 1, 1, 0, 30)
    assert interval.at_or_before(utc(2026, 1, 1, 0, 25)) == utc(2026, 1, 1, 0, 20)
    one_off = clock.Timing(kind="one_off", anchor=utc(2026, 5, 1, 12))
    assert one_off.next_after(utc(2026, 5, 1)) == utc(2026, 5, 1, 12)
    assert one_off.next_after(utc(2026, 5, 1, 12)) is None


# --- validation ------------------------------------------------------------------------


NOW = utc(2026, 6, 1, 10, 0)


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"kind": "cron", "cron_expression": "61 * * * *"}, "cron_expression", "not a valid cron"),
        ({"kind": "cron", "cron_expression": "* * * *"}, "cron_expression", "five-field"),
        ({"kind": "cron", "cron_expression": "0 0 30 2 *"}, "cron_expression", "never fires"),
        ({"kind": "cron", "cron_expression": "0 9 * * *", "timezone_name": "Mars/Olympus"}, "timezone", "IANA"),
        ({"kind": "one_off", "run_at": utc(2026, 5, 31)}, "run_at", "in the past"),
        ({"kind": "one_off"}, "run_at", "needs run_at"),
        ({"kind": "interval", "interval_seconds": 1}, "interval_seconds", "from 10"),
        ({"kind": "event", "event_name": "Not An Event"}, "event_name", "event_name"),
        ({"kind": "hourly"}, "kind", "not one of"),
        ({"kind": "interval", "interval_seconds": 60, "task_executor": "nope"}, "task_executor", "unknown executor"),
        ({"kind": "interval", "interval_seconds": 60, "missed_run_policy": "panic"}, "missed_run_policy", "panic"),
        ({"kind": "interval", "interval_seconds": 60, "max_catch_up": 1000}, "max_catch_up", "max_catch_up"),
    ],
)
def test_invalid_schedules_refused_naming_the_problem(tenant_a, kwargs, field, words):
    """Bad cron, time zone, one-off in the past, unknown executor…: refused naming the field; nothing stored."""
    with pytest.raises(InvalidInput) as caught:
        schedule_create(organization=tenant_a.organization, actor=tenant_a.member, name="S", task_title="T",
                        now=NOW, **kwargs)
    assert caught.value.field == field
    assert words in caught.value.message
    assert not Schedule.objects.for_org(tenant_a.organization).exists()


def test_create_is_audited_and_uses_org_timezone(tenant_a):
    """A schedule defaults to the organization's time zone, computes its next run and is audited."""
    org = tenant_a.organization
    org.timezone = "Europe/Berlin"
    org.save()
    schedule = schedule_create(organization=org, actor=tenant_a.member, name="Morning", kind="cron",
                               cron_expression="0 9 * * *", task_title="Report", now=NOW)
    assert schedule.timezone == "Europe/Berlin"
    assert schedule.next_run_at == utc(2026, 6, 2, 7, 0)  # 09:00 CEST
    assert AuditEvent.objects.for_org(org).filter(action="schedule.created", target_id=str(schedule.pk)).exists()


# --- the ticker ------------------------------------------------------------------------


def make(tenant, now=NOW, **kwargs):
    defaults = {"name": "S", "kind": "interval", "interval_seconds": 3600, "task_title": "Scheduled work"}
    defaults.update(kwargs)
    return schedule_create(organization=tenant.organization, actor=tenant.member, now=now, **defaults)


def tasks_of(schedule):
    return Task.objects.for_org(schedule.organization).filter(source=TaskSource.SCHEDULE,
                                                               ai_context__schedule_id=schedule.pk)


def test_interval_fires_on_time_and_moves_on(tenant_a, engine):
    """An hourly schedule creates one task per hour and is not due again until the next hour."""
    schedule = make(tenant_a, run_at=NOW + timedelta(minutes=5))
    assert schedules_tick(now=NOW).fired == 0
    assert schedules_tick(now=NOW + timedelta(minutes=5, seconds=2)).fired == 1
    assert schedules_tick(now=NOW + timedelta(minutes=6)).fired == 0
    assert schedules_tick(now=NOW + timedelta(hours=1, minutes=5)).fired == 1
    schedule.refresh_from_db()
    assert schedule.run_count == 2
    assert schedule.next_run_at == NOW + timedelta(hours=2, minutes=5)
    task = tasks_of(schedule).order_by("pk").first()
    assert task.title == "Scheduled work"
    assert task.ai_context["scheduled_for"] == (NOW + timedelta(minutes=5)).isoformat()
    engine.drain()
    task.refresh_from_db()
    assert task.status == "completed"


def test_one_off_fires_once(tenant_a, engine):
    """A one-off schedule fires once and then has no next run."""
    schedule = make(tenant_a, kind="one_off", run_at=NOW + timedelta(hours=1), interval_seconds=None)
    schedules_tick(now=NOW + timedelta(hours=1))
    schedules_tick(now=NOW + timedelta(hours=5))
    schedule.refresh_from_db()
    assert schedule.next_run_at is None
    assert tasks_of(schedule).count() == 1


def test_cron_schedule_across_dst_with_ticker(tenant_a):
    """A 02:30 New York cron schedule ticked through the spring-forward night fires once, at 03:30 EDT."""
    start = utc(2026, 3, 7, 12)
    schedule = make(tenant_a, now=start, kind="cron", cron_expression="30 2 * * *", timezone_name="America/New_York",
                    interval_seconds=None)
    moment = start
    while moment < utc(2026, 3, 9, 12):
        schedules_tick(now=moment)
        moment += timedelta(minutes=10)
    fired = list(ScheduleFiring.objects.for_org(tenant_a.organization).filter(schedule=schedule)
                 .order_by("scheduled_for").values_list("scheduled_for", flat=True))
    assert fired == [utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)]


DOWN_FROM = NOW
BACK_AT = NOW + timedelta(hours=5, minutes=30)  # five hourly runs missed (…+1h … +5h)


@pytest.mark.parametrize(
    ("policy", "max_catch_up", "expected"),
    [
        ("skip", 10, []),
        ("run_once", 10, [NOW + timedelta(hours=5)]),
        ("catch_up", 10, [NOW + timedelta(hours=h) for h in range(1, 6)]),
        ("catch_up", 3, [NOW + timedelta(hours=h) for h in range(3, 6)]),
    ],
)
def test_missed_run_policies(tenant_a, policy, max_catch_up, expected):
    """After five hours down, skip fires nothing late, run_once fires once, catch_up fires each (at most N, newest)."""
    schedule = make(tenant_a, run_at=NOW + timedelta(hours=1), missed_run_policy=policy, max_catch_up=max_catch_up)
    schedules_tick(now=BACK_AT)
    fired = list(ScheduleFiring.objects.for_org(tenant_a.organization).filter(schedule=schedule)
                 .order_by("scheduled_for").values_list("scheduled_for", flat=True))
    assert fired == expected
    assert tasks_of(schedule).count() == len(expected)
    schedule.refresh_from_db()
    assert schedule.next_run_at == NOW + timedelta(hours=6)
    if policy == "skip":
        assert "skipped" in schedule.last_error


def test_skip_policy_still_fires_a_run_within_grace(tenant_a, settings):
    """skip drops only runs later than the grace period: a run 30 s late still fires."""
    settings.SCHEDULE_GRACE_SECONDS = 60
    schedule = make(tenant_a, run_at=NOW + timedelta(hours=1), missed_run_policy="skip")
    schedules_tick(now=NOW + timedelta(hours=1, seconds=30))
    assert tasks_of(schedule).count() == 1


def test_skip_policy_one_off_missed_is_not_run(tenant_a, settings):
    """A one-off schedule with skip missed by more than the grace period is dropped, not run late."""
    settings.SCHEDULE_GRACE_SECONDS = 60
    schedule = make(tenant_a, kind="one_off", interval_seconds=None, run_at=NOW + timedelta(hours=1),
                    missed_run_policy="skip")
    schedules_tick(now=NOW + timedelta(hours=3))
    schedule.refresh_from_db()
    assert tasks_of(schedule).count() == 0
    assert schedule.next_run_at is None


def test_disabled_schedule_does_not_fire_and_resumes_from_now(tenant_a):
    """A disabled schedule never fires; enabling it again starts from now, without replaying the pause."""
    schedule = make(tenant_a, run_at=NOW + timedelta(hours=1), missed_run_policy="catch_up")
    schedule_update(schedule=schedule, actor=tenant_a.member, enabled=False, now=NOW)
    schedules_tick(now=NOW + timedelta(hours=3))
    assert tasks_of(schedule).count() == 0
    schedule_update(schedule=schedule, actor=tenant_a.member, enabled=True, now=NOW + timedelta(hours=3, minutes=10))
    schedule.refresh_from_db()
    assert schedule.next_run_at == NOW + timedelta(hours=4)
    schedules_tick(now=NOW + timedelta(hours=3, minutes=20))
    assert tasks_of(schedule).count() == 0


def test_broken_template_records_error_and_moves_on(tenant_a, executor_registry):
    """If the task cannot be created (executor gone), the firing records the error and the schedule moves on."""
    from automation.executors.builtin import NoopExecutor

    executor_registry("flaky-exec", NoopExecutor())
    schedule = make(tenant_a, run_at=NOW + timedelta(hours=1), task_executor="flaky-exec")
    from automation.executors import unregister_executor

    unregister_executor("flaky-exec")
    result = schedules_tick(now=NOW + timedelta(hours=1))
    assert result.failed == 1
    schedule.refresh_from_db()
    assert "flaky-exec" in schedule.last_error
    assert schedule.next_run_at == NOW + timedelta(hours=2)
    firing = ScheduleFiring.objects.for_org(tenant_a.organization).get(schedule=schedule)
    assert firing.task is None
    assert "flaky-exec" in firing.error


def test_ticker_covers_every_organization_in_batches(tenants):
    """One ticker fires due schedules of every organization, batch by batch, each exactly once."""
    a, b = tenants
    made = [make(t, run_at=NOW + timedelta(minutes=1), name=f"S{i}") for i in range(3) for t in (a, b)]
    result = schedules_tick(now=NOW + timedelta(minutes=1), batch_size=2)
    assert result.fired == 6
    assert result.batches == 3
    assert ScheduleFiring.objects.dangerously_unscoped().filter(schedule__in=made).count() == 6
    assert Task.objects.for_org(b.organization).filter(source=TaskSource.SCHEDULE).count() == 3


def test_ticker_and_sweeps_are_system_jobs():
    """The ticker, the approvals sweep and the prune are declared as system periodic jobs (not per schedule)."""
    from automation.system_jobs import system_jobs

    jobs = {job.name: job for job in system_jobs()}
    assert jobs["automation.schedules_tick"].every_seconds <= 5
    assert "automation.approvals_sweep" in jobs
    assert "automation.schedules_prune" in jobs


def test_naive_run_at_refused(tenant_a):
    """A run_at without a time zone offset is refused naming run_at."""
    with pytest.raises(InvalidInput) as caught:
        make(tenant_a, run_at=datetime(2026, 7, 1, 9, 0))
    assert caught.value.field == "run_at"
