"""A real Celery worker process on the embedded Redis, attached to the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

from config import heartbeat
from config.celery import app

ROOT = Path(__file__).resolve().parents[2]


def worker_env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "STAFFER_DB_NAME": connection.settings_dict["NAME"],
        "STAFFER_REDIS_DB_BASE": str(settings.REDIS.base),
        "PYTHONUNBUFFERED": "1",
    }


class Worker:
    def __init__(self, name: str, concurrency: int = 2, queues: str = "celery", pool: str = "prefork") -> None:
        self.name = name
        self.hostname = f"{name}-{os.getpid()}@test"
        self.log_path = ROOT / "var" / "test-logs" / f"{self.hostname.replace('@', '_')}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.argv = [
            sys.executable, "-m", "celery", "-A", "config", "worker",
            "-n", self.hostname, "-c", str(concurrency), "-Q", queues, "-P", pool,
            "-l", "INFO", "--without-gossip", "--without-mingle",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Worker:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, cwd=ROOT, env=worker_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early; see {self.log_path}")
            if self.hostname in heartbeat.live_workers():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"worker did not become ready; see {self.log_path}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children)."""
        self.stop(signal.SIGKILL)


def purge_broker() -> None:
    app.control.purge()
    import redis

    client = redis.Redis.from_url(settings.REDIS.app_url())
    for key in client.scan_iter(f"{heartbeat.KEY_PREFIX}*"):
        client.delete(key)


@contextmanager
def running_worker(name: str = "w", **kwargs: object) -> Iterator[Worker]:
    worker = Worker(name, **kwargs).start()  # type: ignore[arg-type]
    try:
        yield worker
    finally:
        worker.stop()
