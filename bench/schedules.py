"""Benchmark: 10,000 tenant schedules due in the same minute — how late do they fire?

Runs on the embedded servers, in a throwaway database (``bench_schedules``
unless ``STAFFER_BENCH_DB`` says otherwise) and Redis databases offset by
``STAFFER_REDIS_DB_BASE`` (default 4). It creates the schedules spread over
100 organizations, all due at the same instant T, then starts ``--tickers``
ticker processes at T (as beat would, on its 5-second tick) that each run
``schedules_tick`` until nothing is due. Every fired schedule creates its
task through the engine (``task_create``, queued, message published).

Lateness = ``ScheduleFiring.fired_at - scheduled_for``. In production add up to
one beat period (5 s) for the tick that notices T. Prints figures, asserts nothing.

    .venv/bin/python bench/schedules.py [--count 10000] [--orgs 100] [--tickers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("STAFFER_REDIS_DB_BASE", "4")
os.environ.setdefault("LOG_LEVEL", "WARNING")
BENCH_DB = os.environ.get("STAFFER_BENCH_DB", "bench_schedules")


def _setup() -> None:
    import django

    django.setup()


def ticker(deadline_seconds: float) -> None:
    """One ticker process: tick until nothing is due for a moment (or the deadline passes)."""
    _setup()
    from automation.services.schedules import schedules_tick

    stop_at = time.monotonic() + deadline_seconds
    idle_since: float | None = None
    while time.monotonic() < stop_at:
        result = schedules_tick(batch_size=100, budget_seconds=None)
        if result.fired:
            idle_since = None
        else:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 2:
                return
            time.sleep(0.05)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--tickers", type=int, default=2)
    parser.add_argument("--ticker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=900, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ticker:
        ticker(args.deadline)
        return

    _setup()
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Organization
    from automation.models import Schedule, ScheduleFiring, Task
    from config.celery import app

    settings.DATABASES["default"]["TEST"]["NAME"] = BENCH_DB
    original = connection.settings_dict["NAME"]
    started = time.monotonic()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)
    print(f"database {name} ready in {time.monotonic() - started:.1f} s")
    try:
        organizations = Organization.objects.bulk_create(
            [Organization(slug=f"bench-{i}", name=f"Bench {i}") for i in range(args.orgs)]
        )
        due_at = (timezone.now() + timedelta(seconds=15)).replace(microsecond=0)
        per_org = args.count // args.orgs
        rows = [
            Schedule(organization=org, name=f"S{n}", kind="interval", interval_seconds=3600, run_at=due_at,
                     next_run_at=due_at, task_title=f"Scheduled job {n}", task_executor="noop")
            for org in organizations for n in range(per_org)
        ]
        made = time.monotonic()
        Schedule.objects.dangerously_unscoped().bulk_create(rows, batch_size=2000)
        total = len(rows)
        print(f"{total} schedules in {args.orgs} organizations created in {time.monotonic() - made:.1f} s, "
              f"all due at {due_at.isoformat()}")
        connection.close()
        wait = (due_at - timezone.now()).total_seconds()
        if wait > 0:
            time.sleep(wait)
        env = {**os.environ, "STAFFER_DB_NAME": name}
        t0 = time.monotonic()
        tickers = [
            subprocess.Popen([sys.executable, __file__, "--ticker", "--deadline", str(args.deadline)], env=env)
            for _ in range(args.tickers)
        ]
        for process in tickers:
            process.wait()
        elapsed = time.monotonic() - t0
        firings = list(ScheduleFiring.objects.dangerously_unscoped().values_list("scheduled_for", "fired_at"))
        lateness = [(fired - scheduled).total_seconds() for scheduled, fired in firings]
        distinct = ScheduleFiring.objects.dangerously_unscoped().values("schedule_id").distinct().count()
        duplicates = len(firings) - distinct
        tasks = Task.objects.dangerously_unscoped().count()
        print(f"tickers: {args.tickers} processes, batch 100, SELECT … FOR UPDATE SKIP LOCKED")
        print(f"fired {len(firings)} of {total} schedules ({duplicates} fired twice), {tasks} tasks created, "
              f"in {elapsed:.1f} s ({len(firings) / elapsed:.0f} schedules/s)")
        if lateness:
            print(f"lateness: p50 {percentile(lateness, 0.5):.2f} s, p95 {percentile(lateness, 0.95):.2f} s, "
                  f"p99 {percentile(lateness, 0.99):.2f} s, max {max(lateness):.2f} s, "
                  f"mean {statistics.fmean(lateness):.2f} s")
            print("(in production add up to one beat period, 5 s, for the tick that first sees the due time)")
    finally:
        app.control.purge()
        connection.creation.destroy_test_db(original, verbosity=0)


if __name__ == "__main__":
    main()
