"""Circuit breakers per organization and executor (or integration).

Closed: work flows. After ``AUTOMATION_BREAKER_THRESHOLD`` consecutive failed
attempts the circuit opens: queued tasks with that breaker key stay queued.
After the cool-down the next claim becomes the single half-open probe; its
success closes the circuit, its failure opens it again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.events import publish_org_event
from automation import conf
from automation.models import BreakerState, CircuitBreaker, Task, TaskStatus

logger = logging.getLogger(__name__)


def open_circuits(organization_id: int) -> list[CircuitBreaker]:
    """The organization's circuits that are not closed (usually none)."""
    return _rows(organization_id)


def _rows(organization_id: int) -> list[CircuitBreaker]:
    return list(
        CircuitBreaker.objects.dangerously_unscoped()
        .filter(organization_id=organization_id)
        .exclude(state=BreakerState.CLOSED)
    )


def _probe_running(breaker: CircuitBreaker) -> bool:
    if breaker.probe_task_id is None:
        return False
    return Task.objects.dangerously_unscoped().filter(pk=breaker.probe_task_id, status=TaskStatus.IN_PROGRESS).exists()


def blocked_keys(organization_id: int, *, now: datetime | None = None,
                 rows: list[CircuitBreaker] | None = None) -> list[str]:
    """Breaker keys whose tasks must not start now (open and cooling down, or probing)."""
    now = now or timezone.now()
    cooldown = timedelta(seconds=conf.breaker_cooldown_seconds())
    keys = []
    for breaker in _rows(organization_id) if rows is None else rows:
        cooling = breaker.state == BreakerState.OPEN and breaker.opened_at and now - breaker.opened_at < cooldown
        probing = breaker.state == BreakerState.HALF_OPEN and _probe_running(breaker)
        if cooling or probing:
            keys.append(breaker.key)
    return keys


def note_claim(task: Task, *, now: datetime | None = None) -> None:
    """A task is starting: if its circuit is not closed, it becomes the half-open probe."""
    now = now or timezone.now()
    breaker = (
        CircuitBreaker.objects.dangerously_unscoped()
        .select_for_update()
        .filter(organization_id=task.organization_id, key=task.breaker_key)
        .exclude(state=BreakerState.CLOSED)
        .first()
    )
    if breaker is None:
        return
    breaker.state = BreakerState.HALF_OPEN
    breaker.probe_task = task
    breaker.save(update_fields=["state", "probe_task", "updated_at"])
    _announce(breaker, "half_open")


def record_success(*, organization_id: int, key: str) -> None:
    """An attempt succeeded: reset the failure count and close the circuit."""
    changed = (
        CircuitBreaker.objects.dangerously_unscoped()
        .filter(organization_id=organization_id, key=key)
        .filter(~Q(state=BreakerState.CLOSED) | Q(consecutive_failures__gt=0))
        .update(state=BreakerState.CLOSED, consecutive_failures=0, opened_at=None, probe_task=None,
                updated_at=timezone.now())
    )
    if changed:
        breaker = CircuitBreaker.objects.dangerously_unscoped().get(organization_id=organization_id, key=key)
        _announce(breaker, "closed")


def record_failure(*, organization_id: int, key: str, error: str = "") -> CircuitBreaker:
    """An attempt failed: count it; open the circuit at the threshold, or again after a failed probe."""
    now = timezone.now()
    CircuitBreaker.objects.dangerously_unscoped().get_or_create(organization_id=organization_id, key=key)
    breaker = CircuitBreaker.objects.dangerously_unscoped().select_for_update().get(
        organization_id=organization_id, key=key
    )
    breaker.consecutive_failures += 1
    breaker.last_error = error[:2000]
    opened = False
    if breaker.state == BreakerState.HALF_OPEN or (
        breaker.state == BreakerState.CLOSED and breaker.consecutive_failures >= conf.breaker_threshold()
    ):
        breaker.state = BreakerState.OPEN
        breaker.opened_at = now
        breaker.probe_task = None
        opened = True
    breaker.save()
    if opened:
        logger.warning("circuit %s opened for organization %s after %s failures", key, organization_id,
                       breaker.consecutive_failures)
        _announce(breaker, "open")
    return breaker


def _announce(breaker: CircuitBreaker, state: str) -> None:
    data = {"key": breaker.key, "state": state, "failures": breaker.consecutive_failures}
    organization_id = breaker.organization_id

    def send() -> None:
        try:
            publish_org_event(organization_id=organization_id, event="circuit.changed", data=data)
        except Exception:
            logger.warning("could not publish circuit change", exc_info=True)

    transaction.on_commit(send)
