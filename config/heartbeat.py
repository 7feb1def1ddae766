"""Worker heartbeats in Redis, read by ``/readyz``.

Each worker process writes ``staffer:worker:<hostname>`` with a TTL every few
seconds from a daemon thread started when the worker is ready.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import redis
from django.conf import settings

KEY_PREFIX = "staffer:worker:"


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS.app_url(), socket_timeout=2, socket_connect_timeout=2)


def beat(hostname: str) -> None:
    _client().set(f"{KEY_PREFIX}{hostname}", str(time.time()), ex=settings.WORKER_HEARTBEAT_TTL)


def live_workers() -> list[str]:
    client = _client()
    return sorted(key.decode()[len(KEY_PREFIX) :] for key in client.scan_iter(f"{KEY_PREFIX}*"))


def start_thread(hostname: str) -> threading.Thread:
    def run() -> None:
        while True:
            with contextlib.suppress(redis.RedisError):  # Redis down: readiness says so; keep trying
                beat(hostname)
            time.sleep(settings.WORKER_HEARTBEAT_SECONDS)

    thread = threading.Thread(target=run, name="staffer-heartbeat", daemon=True)
    thread.start()
    return thread


def on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    start_thread(getattr(sender, "hostname", "worker"))
