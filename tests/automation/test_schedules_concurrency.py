"""Two tickers at once (SELECT … FOR UPDATE SKIP LOCKED) never fire a schedule twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from automation.models import Schedule, ScheduleFiring, Task, TaskSource
from automation.services.schedules import TickResult, schedules_tick

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
COUNT = 120


def _make_due(organization, count: int) -> list[int]:
    rows = [
        Schedule(
            organization=organization, name=f"S{i}", kind="interval", interval_seconds=3600,
            run_at=NOW, next_run_at=NOW, task_title=f"Job {i}",
        )
        for i in range(count)
    ]
    return [s.pk for s in Schedule.objects.for_org(organization).bulk_create(rows)]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_tickers_fire_each_schedule_once(tenant_a, engine):
    """Two tickers started together split the due schedules between them; every schedule fires exactly once."""
    ids = _make_due(tenant_a.organization, COUNT)
    barrier = threading.Barrier(2)
    results: list[TickResult] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(schedules_tick(now=NOW + timedelta(seconds=1), batch_size=5, budget_seconds=None))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(r.fired for r in results) == COUNT
    assert all(r.schedules > 0 for r in results), [r.schedules for r in results]  # both tickers did work
    firings = ScheduleFiring.objects.dangerously_unscoped().filter(schedule_id__in=ids)
    assert firings.count() == COUNT
    assert firings.values("schedule_id").distinct().count() == COUNT
    assert Task.objects.for_org(tenant_a.organization).filter(source=TaskSource.SCHEDULE).count() == COUNT
    assert not Schedule.objects.for_org(tenant_a.organization).filter(next_run_at__lte=NOW + timedelta(seconds=1)
                                                                      ).exists()


@pytest.mark.django_db(transaction=True)
def test_ticker_skips_a_schedule_another_holds(tenant_a, engine):
    """A schedule locked by one ticker's open transaction is skipped (not waited for) by another, and fires once."""
    from django.db import transaction

    (held_id, other_id) = _make_due(tenant_a.organization, 2)
    locked = threading.Event()
    release = threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                list(Schedule.objects.dangerously_unscoped().select_for_update().filter(pk=held_id))
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(timeout=30)
    first = schedules_tick(now=NOW + timedelta(seconds=1), budget_seconds=None)
    release.set()
    holder.join(timeout=30)
    assert first.fired == 1
    assert ScheduleFiring.objects.dangerously_unscoped().get(schedule_id=other_id)
    second = schedules_tick(now=NOW + timedelta(seconds=2), budget_seconds=None)
    assert second.fired == 1
    assert ScheduleFiring.objects.dangerously_unscoped().filter(schedule_id__in=[held_id, other_id]).count() == 2
