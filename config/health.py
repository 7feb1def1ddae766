"""Liveness (``/healthz``) and readiness (``/readyz``) probes."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config import heartbeat


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_redis() -> str:
    redis.Redis.from_url(settings.REDIS.app_url(), socket_timeout=2, socket_connect_timeout=2).ping()
    return "ok"


def _check_worker() -> str:
    workers = heartbeat.live_workers()
    if not workers:
        raise RuntimeError("no Celery worker heartbeat in the last "
                           f"{settings.WORKER_HEARTBEAT_TTL} seconds")
    return f"ok ({len(workers)} worker{'s' if len(workers) != 1 else ''})"


CHECKS: dict[str, Callable[[], str]] = {
    "database": _check_database,
    "redis": _check_redis,
    "worker": _check_worker,
}


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            detail, ok = check(), True
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none raised
            detail, ok = f"{type(exc).__name__}: {exc}", False
        results[name] = {
            "status": "ok" if ok else "fail",
            "detail": detail,
            "ms": round((time.monotonic() - started) * 1000, 1),
        }
    ready = all(r["status"] == "ok" for r in results.values())
    return JsonResponse({"status": "ok" if ready else "fail", "checks": results}, status=200 if ready else 503)
