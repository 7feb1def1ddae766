"""Worker warm-ups run in each worker process as it starts, in the background; a failing one harms nothing."""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings

from tests.support import warm_probe
from tests.support.worker import Worker


@pytest.mark.worker
def test_each_worker_process_runs_its_warmups_and_a_failing_one_is_only_logged(transactional_db, monkeypatch,
                                                                               tenant_a):
    client = redis.Redis.from_url(settings.REDIS.app_url())
    client.delete(warm_probe.KEY)
    monkeypatch.setenv("STAFFER_WORKER_WARMUPS", "tests.support.warm_probe.fail,tests.support.warm_probe.mark")
    worker = Worker("warm", concurrency=2, queues="warmup-probe").start()
    try:
        deadline = time.monotonic() + 60
        while client.scard(warm_probe.KEY) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        pids = {int(p) for p in client.smembers(warm_probe.KEY)}
        assert len(pids) == 2, "each of the two pool processes warms up"
        assert worker.process is not None
        assert worker.process.pid not in pids, "the parent that forks the pool never loads what is warmed"
        log = worker.log_path.read_text()
        assert "worker warm-up tests.support.warm_probe.fail failed" in log
        assert worker.process.poll() is None, "a failing warm-up does not stop the worker"
    finally:
        worker.stop()
        client.delete(warm_probe.KEY)
