"""Fault tests with real workers: killed pool children, killed workers, a killed Redis.

These run on a private redis-server (not the shared embedded one), so
killing it disturbs nobody; the workers get it through REDIS_URL and the test
process publishes to it through its own Celery app. The test process plays
the part of beat: it runs the reconciler every half second. Workers run with
a 3-second lease.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.conf import settings as django_settings
from django.db.models import Count

from automation.models import SideEffect, SideEffectStatus, Task, TaskRun, TaskStatus
from automation.services import dispatch, outbox, reconciler
from config import embedded
from config.celery import app as project_celery_app
from config.redis_urls import RedisLocation
from tests.automation.factories import make_task
from tests.support.worker import ROOT, Worker, worker_env

pytestmark = [pytest.mark.worker, pytest.mark.slow]

S = TaskStatus
TERMINAL = {S.COMPLETED, S.FAILED, S.SKIPPED, S.CANCELLED}
LEASE = 3


class PrivateRedis:
    """A redis-server of this module's own, without persistence (a kill loses every message)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "redis.sock"
        self.pidfile = root / "redis.pid"

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.sock.unlink(missing_ok=True)
        subprocess.run(
            [embedded._redis_executable(), "--port", "0", "--unixsocket", str(self.sock), "--unixsocketperm", "700",
             "--daemonize", "yes", "--pidfile", str(self.pidfile), "--dir", str(self.root),
             "--logfile", str(self.root / "redis.log"), "--appendonly", "no", "--save", "", "--databases", "32"],
            check=True,
        )
        deadline = time.monotonic() + 20
        while not embedded._redis_alive(self.sock):
            assert time.monotonic() < deadline, "private redis did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        pid = int(self.pidfile.read_text().strip())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while True:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        self.sock.unlink(missing_ok=True)


class PrivateWorker(Worker):
    """A real worker on the private Redis with a short lease."""

    def __init__(self, name: str, private: PrivateRedis, concurrency: int = 1) -> None:
        super().__init__(name, concurrency=concurrency)
        self.private = private

    def launch(self) -> PrivateWorker:
        env = {**worker_env(), "REDIS_URL": self.private.url, "AUTOMATION_LEASE_SECONDS": str(LEASE),
               "AUTOMATION_HEARTBEAT_SECONDS": "1", "AUTOMATION_REDISPATCH_SECONDS": "3"}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 90) -> PrivateWorker:
        location = RedisLocation(self.private.url, base=django_settings.REDIS.base)
        client = redis.Redis.from_url(location.app_url())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"worker exited early; see {self.log_path}"
            with contextlib.suppress(redis.RedisError):
                if client.exists(f"staffer:worker:{self.hostname}"):
                    return self
            time.sleep(0.2)
        raise AssertionError(f"worker not ready; see {self.log_path}")

    def children(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    stat = (entry / "stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                        found.append(int(entry.name))
        return found


@pytest.fixture(scope="module")
def private_redis():
    server = PrivateRedis(Path(django_settings.VAR_DIR) / f"faults-{os.getpid()}")
    server.start()
    yield server
    with contextlib.suppress(Exception):
        server.kill()


@pytest.fixture
def faults(transactional_db, private_redis, monkeypatch, settings):
    """Publish to the private Redis, reconcile here, and stop every worker afterwards."""
    location = RedisLocation(private_redis.url, base=django_settings.REDIS.base)
    # Not the current app: shared tasks elsewhere must keep publishing to the project's broker.
    app = Celery("faults", broker=location.broker_url(), set_as_current=False)
    app.conf.broker_connection_retry_on_startup = True
    app.conf.broker_connection_timeout = 2

    def publish_run(*, organization_id: int, task_id: int) -> None:
        with contextlib.suppress(Exception):  # Redis is down: the reconciler publishes it again
            app.send_task(dispatch.RUN_TASK, kwargs={"organization_id": organization_id, "task_id": task_id},
                          retry=True, retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2})

    original_backlog = reconciler.broker_backlog
    monkeypatch.setattr(dispatch, "publish_run", publish_run)
    monkeypatch.setattr(reconciler, "broker_backlog", lambda: original_backlog(app))
    monkeypatch.setattr(outbox, "deliver_on_commit", lambda organization_id: None)
    settings.AUTOMATION_REDISPATCH_SECONDS = 3
    with contextlib.suppress(Exception):
        app.control.purge()
    workers: list[PrivateWorker] = []

    def start(*names: str, concurrency: int = 1) -> list[PrivateWorker]:
        started = [PrivateWorker(name, private_redis, concurrency=concurrency).launch() for name in names]
        for worker in started:
            worker.wait_ready()
        workers.extend(started)
        return started

    yield start
    for worker in workers:
        worker.stop(sig=signal.SIGKILL, timeout=10)
    with contextlib.suppress(Exception):
        app.control.purge()
    app.close()
    project_celery_app.set_current()


def _drive(tasks, timeout: float = 120.0) -> list[str]:
    """Reconcile (as beat would) until every task is terminal; return their statuses."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = list(Task.objects.dangerously_unscoped().filter(pk__in=[t.pk for t in tasks])
                        .order_by("pk").values_list("status", flat=True))
        if all(s in TERMINAL for s in statuses):
            return statuses
        reconciler.reconcile()
        time.sleep(0.5)
    raise AssertionError(f"not terminal after {timeout}s: {statuses}")


def _wait_claimed(task: Task, timeout: float = 60.0) -> Task:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task.refresh_from_db()
        if task.status == S.IN_PROGRESS and task.lease_owner:
            return task
        reconciler.reconcile()
        time.sleep(0.1)
    raise AssertionError(f"task never started: {task.status}")


def _effect_task(org, seconds: float = 6) -> Task:
    return make_task(org, title="Email the signed contract", executor="wait", max_retries=3,
                     parameters={"seconds": seconds, "effects": [{"key": "email:contract", "kind": "record",
                                                                  "payload": {"to": "ada@example.test"}}]})


def _assert_effect_once(task: Task) -> None:
    rows = SideEffect.objects.dangerously_unscoped().filter(task=task)
    assert rows.count() == 1
    assert rows.get().idempotency_key == f"task:{task.pk}:email:contract"
    assert outbox.deliver_pending(organization_id=task.organization_id) <= 1
    assert rows.get().status == SideEffectStatus.DELIVERED
    assert outbox.deliver_pending(organization_id=task.organization_id) == 0


def test_a_killed_pool_child_loses_its_lease_and_the_task_completes_with_one_effect(tenant_a, faults):
    """SIGKILL the pool process running a task: the lease expires, the reconciler requeues it, it completes
    on a live process, and its outbox row is recorded exactly once."""
    first, _second = faults("child-a", "child-b")
    task = _wait_claimed(_effect_task(tenant_a.organization))
    holder = next(w for w in (first, _second) if w.hostname == task.lease_owner)
    children = holder.children()
    assert len(children) == 1
    time.sleep(1)
    os.kill(children[0], signal.SIGKILL)
    assert _drive([task]) == [S.COMPLETED]
    runs = list(TaskRun.objects.dangerously_unscoped().filter(task=task).order_by("attempt"))
    assert [r.status for r in runs] == ["lost", "completed"]
    assert runs[0].worker == holder.hostname
    _assert_effect_once(task)


def test_a_killed_worker_loses_its_task_to_another_worker_with_one_effect(tenant_a, faults):
    """SIGKILL a whole worker mid-task: another worker completes the task; one outbox row."""
    first, second = faults("whole-a", "whole-b")
    task = _wait_claimed(_effect_task(tenant_a.organization))
    holder = first if task.lease_owner == first.hostname else second
    survivor = second if holder is first else first
    time.sleep(1)
    holder.kill()
    assert _drive([task]) == [S.COMPLETED]
    runs = list(TaskRun.objects.dangerously_unscoped().filter(task=task).order_by("attempt"))
    assert [(r.status, r.worker) for r in runs] == [("lost", holder.hostname), ("completed", survivor.hostname)]
    _assert_effect_once(task)


def test_killing_redis_with_work_queued_and_running_loses_no_task(tenant_a, faults, private_redis):
    """kill -9 the broker (no persistence: every queued message is gone) while tasks run and wait, restart it:
    every accepted task still completes, and none completes twice."""
    faults("redis-a", "redis-b", concurrency=2)
    org = tenant_a.organization
    tasks = [make_task(org, title=f"Slow {i}", executor="wait", parameters={"seconds": 3}) for i in range(4)]
    tasks += [make_task(org, title=f"Quick {i}", executor="wait", parameters={"seconds": 0.3}) for i in range(16)]
    deadline = time.monotonic() + 60
    while Task.objects.for_org(org).filter(status=S.IN_PROGRESS).count() < 2:
        assert time.monotonic() < deadline, "no work started"
        time.sleep(0.1)
    queued_at_kill = Task.objects.for_org(org).filter(status=S.QUEUED).count()
    private_redis.kill()
    time.sleep(2)
    private_redis.start()
    assert queued_at_kill > 0
    assert _drive(tasks, timeout=180) == [S.COMPLETED] * len(tasks)
    twice = (TaskRun.objects.for_org(org).filter(status="completed").values("task_id")
             .annotate(n=Count("id")).filter(n__gt=1))
    assert not twice.exists()

