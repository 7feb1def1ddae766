"""The task status machine: the one place a task's status changes.

``TRANSITIONS`` is the whole machine. ``completed`` and ``cancelled`` are
final; ``failed`` and ``skipped`` are terminal but can be reopened (a retry,
or a retried dependency). Migration 0002 installs a PostgreSQL trigger built
from the same table, so a write that bypasses this module is refused too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import User
from automation import conf
from automation.models import BlockedKind, Task, TaskStatus
from automation.services.events import event_append

S = TaskStatus

TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.QUEUED, S.IN_PROGRESS, S.PAUSED, S.BLOCKED, S.SKIPPED, S.COMPLETED, S.CANCELLED}),
    S.QUEUED: frozenset({S.IN_PROGRESS, S.PENDING, S.PAUSED, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.COMPLETED, S.FAILED, S.QUEUED, S.BLOCKED, S.CANCELLED}),
    S.PAUSED: frozenset({S.PENDING, S.CANCELLED}),
    S.BLOCKED: frozenset({S.PENDING, S.QUEUED, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.FAILED: frozenset({S.PENDING, S.BLOCKED}),
    S.SKIPPED: frozenset({S.PENDING}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}

FINAL: frozenset[str] = frozenset({S.COMPLETED, S.CANCELLED})
"""No transition leaves these."""

TERMINAL: frozenset[str] = frozenset({S.COMPLETED, S.FAILED, S.SKIPPED, S.CANCELLED})
"""The task will not run again unless someone reopens it."""

ACTIVE: frozenset[str] = frozenset({S.PENDING, S.QUEUED, S.IN_PROGRESS, S.PAUSED, S.BLOCKED})

_TIMESTAMP = {
    S.IN_PROGRESS: "started_at",
    S.BLOCKED: "blocked_at",
    S.FAILED: "failed_at",
    S.COMPLETED: "completed_at",
    S.CANCELLED: "cancelled_at",
}


def dispatch_rank(priority: int, queued_at: datetime) -> float:
    """The dispatch order key of a task queued at ``queued_at``: higher starts first.

    Ordering by ``priority + seconds waited / aging`` is, at any instant, the
    same as ordering by ``priority · aging − queued_at`` (the instant cancels
    out), so aging needs no periodic rewrite of queued rows.
    """
    return priority * conf.aging_seconds() - queued_at.timestamp()


def effective_priority(task: Task, now: datetime | None = None) -> float:
    """A queued task's priority plus one point per aging interval it has waited."""
    if task.status != S.QUEUED or task.queued_at is None:
        return float(task.priority)
    waited = ((now or timezone.now()) - task.queued_at).total_seconds()
    return task.priority + int(max(waited, 0) // conf.aging_seconds())


def is_legal(source: str, target: str) -> bool:
    """Whether the machine allows ``source`` → ``target``."""
    return target in TRANSITIONS.get(source, frozenset())


def check_transition(task: Task, target: str) -> None:
    """Raise :class:`InvalidInput` naming both states unless ``task`` may move to ``target``."""
    if target not in TRANSITIONS:
        raise InvalidInput(f"{target!r} is not a task status", field="status", code="invalid_status")
    if not is_legal(task.status, target):
        if task.status in FINAL:
            why = f"{task.status} is a final state"
        else:
            allowed = ", ".join(sorted(TRANSITIONS[task.status])) or "nothing"
            why = f"from {task.status} a task may go to {allowed}"
        raise InvalidInput(
            f"task {task.label} cannot go from {task.status} to {target}: {why}",
            field="status",
            code="illegal_transition",
        )


def task_transition(
    *,
    task: Task,
    to: str,
    actor: User | None = None,
    actor_label: str = "",
    reason: str = "",
    payload: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
) -> Task:
    """Move a task (whose row the caller has locked) to ``to`` and log it.

    Sets the matching timestamp, clears lease and blocking fields that no
    longer apply, applies ``fields`` (extra column values saved with the
    change), and appends a ``status_changed`` TaskEvent carrying ``from``,
    ``to``, ``reason`` and ``payload``. Call inside a transaction, with the
    task fetched ``select_for_update()``. Illegal moves raise InvalidInput.
    """
    check_transition(task, to)
    source = task.status
    now = timezone.now()
    changed: dict[str, Any] = {"status": to, "last_modified_by": actor if actor is not None and actor.pk else None}
    stamp = _TIMESTAMP.get(to)
    if stamp and not (to == S.IN_PROGRESS and task.started_at is not None):
        changed[stamp] = now
    if to == S.QUEUED:
        changed.update(queued_at=now, dispatch_rank=dispatch_rank(task.priority, now))
    if source == S.IN_PROGRESS:
        changed.update(lease_token=None, lease_owner="", lease_expires_at=None)
    if source == S.BLOCKED or to in (S.PENDING, S.QUEUED):
        changed.update(blocked_kind=BlockedKind.NONE, blocked_reason="")
    if source in (S.FAILED, S.SKIPPED):
        changed.update(failure_reason="", failed_at=None)
    if to == S.BLOCKED:
        changed.setdefault("blocked_reason", reason)
    if to in (S.FAILED, S.SKIPPED):
        changed["failure_reason"] = reason
    if to != S.QUEUED:
        changed.update(next_attempt_at=None, dispatched_at=None)
    changed.update(fields or {})
    for name, value in changed.items():
        setattr(task, name, value)
    task.save(update_fields=[*changed.keys(), "updated_at"])
    event_append(
        task=task,
        type="status_changed",
        actor=actor,
        actor_label=actor_label,
        payload={"from": source, "to": to, **({"reason": reason} if reason else {}), **(payload or {})},
    )
    return task


def transition_sql_pairs() -> list[tuple[str, str]]:
    """Every legal (from, to) pair, for the database trigger and its test."""
    return sorted((str(source), str(target)) for source, targets in TRANSITIONS.items() for target in targets)
