import json
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tests.support.worker import ROOT, purge_broker, worker_env

pytestmark = [pytest.mark.worker]


PROBE_QUEUE = "beat-probe"  # no worker consumes it, so the message stays to be seen


def _queued_task_names(client: redis.Redis) -> list[str]:
    return [json.loads(raw)["headers"]["task"] for raw in client.lrange(PROBE_QUEUE, 0, -1)]


def test_beat_dispatches_a_database_schedule(transactional_db, tmp_path):
    """Celery beat with django-celery-beat's DatabaseScheduler sends a task stored in PostgreSQL."""
    purge_broker()
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="test ping", task="accounts.ping", args="[1]", interval=every_second, queue=PROBE_QUEUE
    )
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "INFO",
         "-S", "django_celery_beat.schedulers:DatabaseScheduler", "--schedule", str(tmp_path / "beat-schedule")],
        cwd=ROOT, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    broker = redis.Redis(unix_socket_path=settings.REDIS.socket_path, db=settings.REDIS.base)
    dispatched = False
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not dispatched:
            dispatched = "accounts.ping" in _queued_task_names(broker)
            time.sleep(0.25)
    finally:
        beat.terminate()
        beat.wait(timeout=20)
        broker.delete(PROBE_QUEUE)
        purge_broker()
    assert dispatched, "beat never put the scheduled task on the broker"
    output = beat.stdout.read().decode() if beat.stdout else ""
    assert "Sending due task test ping (accounts.ping)" in output, output[-3000:]
