"""Benchmark of the automation engine on the embedded servers. Prints figures, asserts nothing.

1. Throughput: N no-op tasks through the engine (task_create → message → claim
   → run → outcome, events streamed) beside N bare Celery no-op tasks, and the ratio.
2. Dependency-release latency: a 200-task chain; for each link, the time from
   one task's completion to the next one's start (p50, p95).
3. A 1,000-node DAG (layers of 25, each node waiting for two of the layer
   before): time from releasing the root to the last completion.
4. 10,000 queued tasks drained: created while no worker runs, then one worker
   (2 processes) starts; time from its start to the last completion.

Runs in a throwaway database (``bench_engine``, or ``STAFFER_BENCH_DB``) and the
Redis databases at ``STAFFER_REDIS_DB_BASE`` (default 20), with one worker of
``--concurrency`` processes and the reconciler every 2 s in this process (as beat
would). The 10,000-schedule lateness figure is in ``bench/schedules.py``.

    .venv/bin/python bench/engine.py [--n 1000] [--drain 10000] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("STAFFER_REDIS_DB_BASE", "20")
os.environ.setdefault("LOG_LEVEL", "WARNING")
BENCH_DB = os.environ.get("STAFFER_BENCH_DB", "bench_engine")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


class BenchWorker:
    def __init__(self, database: str, concurrency: int) -> None:
        self.hostname = f"bench-{os.getpid()}@engine"
        self.argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-n", self.hostname,
                     "-c", str(concurrency), "-P", "prefork", "-l", "WARNING", "--without-gossip",
                     "--without-mingle", "-Q", "celery"]
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "STAFFER_DB_NAME": database,
                    "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        from config import heartbeat

        log = (ROOT / "var" / "bench-engine-worker.log").open("ab")
        self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + 120
        while self.hostname not in heartbeat.live_workers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("bench worker did not start; see var/bench-engine-worker.log")
            time.sleep(0.1)
        return time.monotonic()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        import redis
        from django.conf import settings

        from config import heartbeat

        redis.Redis.from_url(settings.REDIS.app_url()).delete(f"{heartbeat.KEY_PREFIX}{self.hostname}")


def reconcile_forever(stop: threading.Event) -> None:
    from django.db import connection

    from automation.services.reconciler import reconcile

    while not stop.wait(2):
        try:
            reconcile()
        except Exception as exc:  # a bench keeps going
            print(f"  (reconcile failed: {exc})")
    connection.close()


def wait_done(ids: list[int], timeout: float = 1800) -> None:
    from automation.models import Task

    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending:
        done = set(Task.objects.dangerously_unscoped().filter(pk__in=list(pending))
                   .filter(status__in=["completed", "failed", "skipped", "cancelled"]).values_list("pk", flat=True))
        pending -= done
        if pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} tasks not finished")
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="tasks for the throughput comparison")
    parser.add_argument("--chain", type=int, default=200)
    parser.add_argument("--dag", type=int, default=1000)
    parser.add_argument("--drain", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, transaction

    from accounts.models import Organization
    from accounts.tasks import ping
    from automation.models import ConcurrencyLimit, Task
    from automation.services.tasks import task_create, task_execute
    from config.celery import app
    from tests.support.worker import purge_broker

    settings.DATABASES["default"]["TEST"]["NAME"] = BENCH_DB
    original = connection.settings_dict["NAME"]
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)
    print(f"database {name}; Redis databases from {settings.REDIS.base}; worker: 1 × prefork "
          f"{args.concurrency} processes; {os.cpu_count()} CPUs")
    purge_broker()
    worker = BenchWorker(name, args.concurrency)
    stop = threading.Event()
    reconciler = threading.Thread(target=reconcile_forever, args=(stop,), daemon=True)
    try:
        org = Organization.objects.create(slug="bench", name="Bench")
        ConcurrencyLimit.objects.for_org(org).create(organization=org, max_in_progress=1000)
        worker.start()
        reconciler.start()

        def create(title: str, **kwargs: object) -> Task:
            return task_create(organization=org, actor=None, title=title, source="api", **kwargs)

        # --- 1. throughput ----------------------------------------------------------------
        [r.get(timeout=60) for r in [ping.delay(i) for i in range(50)]]  # warm up
        t0 = time.monotonic()
        results = [ping.delay(i) for i in range(args.n)]
        for result in results:
            result.get(timeout=300)
        bare = args.n / (time.monotonic() - t0)
        for i in range(50):
            create(f"warm-up {i}")
        wait_done(list(Task.objects.for_org(org).values_list("pk", flat=True)))
        t0 = time.monotonic()
        ids = [create(f"Engine no-op {i}").pk for i in range(args.n)]
        created = time.monotonic() - t0
        wait_done(ids)
        elapsed = time.monotonic() - t0
        engine = args.n / elapsed
        print(f"throughput: engine {engine:.0f} tasks/s ({args.n} no-op tasks created and run in {elapsed:.1f} s; "
              f"creating them took {created:.1f} s of it) vs bare Celery {bare:.0f} tasks/s; ratio "
              f"{engine / bare:.2f}")

        # --- 2. dependency-release latency ------------------------------------------------
        root = create("chain 0", execution_type="semi_automated")
        chain = [root]
        for i in range(1, args.chain):
            chain.append(create(f"chain {i}", depends_on=[chain[-1]]))
        task_execute(task=root, actor=None)
        wait_done([t.pk for t in chain])
        rows = {t.pk: t for t in Task.objects.for_org(org).filter(pk__in=[t.pk for t in chain])}
        gaps = [(rows[b.pk].started_at - rows[a.pk].completed_at).total_seconds() * 1000
                for a, b in itertools.pairwise(chain)]
        print(f"dependency release → next task started: p50 {percentile(gaps, 0.5):.1f} ms, "
              f"p95 {percentile(gaps, 0.95):.1f} ms, max {max(gaps):.1f} ms ({len(gaps)} links)")

        # --- 3. a 1,000-node DAG ----------------------------------------------------------
        rng = random.Random(3)
        width = 25
        made = time.monotonic()
        root = create("dag root", execution_type="semi_automated")
        nodes = [root.pk]
        previous = [root.pk]
        while len(nodes) < args.dag - 1:
            layer = []
            for _ in range(min(width, args.dag - 1 - len(nodes))):
                parents = rng.sample(previous, min(2, len(previous)))
                layer.append(create(f"dag node {len(nodes)}", depends_on=parents).pk)
                nodes.append(layer[-1])
            previous = layer
        sink = create("dag sink", depends_on=previous)
        nodes.append(sink.pk)
        layers = (len(nodes) - 2 + width - 1) // width
        print(f"  (DAG of {len(nodes)} nodes, {layers} layers of {width}, built in {time.monotonic() - made:.1f} s)")
        t0 = time.monotonic()
        task_execute(task=root, actor=None)
        wait_done(nodes)
        sink.refresh_from_db()
        root.refresh_from_db()
        span = (sink.completed_at - root.queued_at).total_seconds()
        print(f"{len(nodes):,}-node DAG: root released → last completion {span:.1f} s "
              f"({len(nodes) / span:.0f} tasks/s; wall {time.monotonic() - t0:.1f} s)")

        # --- 4. drain 10,000 queued tasks -------------------------------------------------
        worker.stop()
        made = time.monotonic()
        drain: list[int] = []
        for start in range(0, args.drain, 500):
            with transaction.atomic():
                drain += [create(f"Queued job {i}").pk for i in range(start, min(args.drain, start + 500))]
        print(f"  ({args.drain} tasks queued with no worker running in {time.monotonic() - made:.1f} s, "
              f"{args.drain / (time.monotonic() - made):.0f} creations/s)")
        started = worker.start()
        wait_done(drain, timeout=3600)
        elapsed = time.monotonic() - started
        print(f"{args.drain:,} queued tasks drained in {elapsed:.1f} s after the worker started "
              f"({args.drain / elapsed:.0f} tasks/s)")
    finally:
        stop.set()
        worker.stop()
        app.control.purge()
        connection.close()
        connection.creation.destroy_test_db(original, verbosity=0)


if __name__ == "__main__":
    main()
