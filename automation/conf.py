"""Engine tunables, read from Django settings with safe defaults.

Every value can be set in settings (``AUTOMATION_*``); the base settings read
them from the environment so that test workers can run with short leases.
"""

from __future__ import annotations

from django.conf import settings


def _get(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def lease_seconds() -> float:
    """How long a claimed task stays leased to a worker without a heartbeat."""
    return _get("AUTOMATION_LEASE_SECONDS", 30)


def heartbeat_seconds() -> float:
    """How often a running task renews its lease (a third of the lease by default)."""
    return _get("AUTOMATION_HEARTBEAT_SECONDS", lease_seconds() / 3)


def redispatch_seconds() -> float:
    """A queued task whose message is older than this and not picked up is published again."""
    return _get("AUTOMATION_REDISPATCH_SECONDS", 15)


def retry_base_seconds() -> float:
    return _get("AUTOMATION_RETRY_BASE_SECONDS", 2)


def retry_cap_seconds() -> float:
    return _get("AUTOMATION_RETRY_CAP_SECONDS", 300)


def default_max_retries() -> int:
    return int(_get("AUTOMATION_DEFAULT_MAX_RETRIES", 3))


def org_concurrency() -> int:
    """Tasks one organization may have in progress at once (unless its limit row says otherwise)."""
    return int(_get("AUTOMATION_ORG_CONCURRENCY", 10))


def aging_seconds() -> float:
    """A queued task gains one priority point per this many seconds of waiting."""
    return _get("AUTOMATION_PRIORITY_AGING_SECONDS", 30)


def breaker_threshold() -> int:
    """Consecutive failures of one executor (or integration) that open its circuit."""
    return int(_get("AUTOMATION_BREAKER_THRESHOLD", 5))


def breaker_cooldown_seconds() -> float:
    """How long an open circuit waits before letting one probe through."""
    return _get("AUTOMATION_BREAKER_COOLDOWN_SECONDS", 30)


def run_timeout_seconds() -> float:
    """Longest one attempt may run; longer waits belong in schedules or parked states."""
    return _get("AUTOMATION_RUN_TIMEOUT_SECONDS", 300)


def reconcile_every_seconds() -> float:
    return _get("AUTOMATION_RECONCILE_SECONDS", 2)


LOG_EXCERPT_CHARS = 4000
OUTPUT_EXCERPT_CHARS = 4000
