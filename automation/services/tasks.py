"""Writes on tasks: create, update, and the actions people take (execute, cancel, retry, …).

Every function is one transaction, locks the task row, changes status only
through :func:`automation.services.status.task_transition`, appends
TaskEvents, and audits changes made by a person.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import Membership, Organization, User
from accounts.services.audit import audit_record
from automation import conf
from automation.executors import get_executor
from automation.models import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    AssigneeKind,
    BlockedKind,
    DependencyFailurePolicy,
    ExecutionType,
    Priority,
    Task,
    TaskDependency,
    TaskSource,
    TaskStatus,
)
from automation.services import dispatch, graph
from automation.services.estimates import estimate_duration
from automation.services.events import event_append
from automation.services.status import ACTIVE, FINAL, check_transition, dispatch_rank, task_transition

S = TaskStatus
MAX_RETRIES_LIMIT = 20
TITLE_MAX = 300


@dataclass(frozen=True)
class Assignee:
    """Who a task is assigned to: a user, an agent profile (by id) or a workflow (by id)."""

    kind: str
    user: User | None = None
    ref: str = ""


def _choice(value: str, choices: type, field: str) -> str:
    allowed = [c.value for c in choices]  # type: ignore[attr-defined]
    if value not in allowed:
        raise InvalidInput(f"{value!r} is not one of {', '.join(a for a in allowed if a)}", field=field)
    return value


def _check_title(title: str) -> str:
    title = (title or "").strip()
    if not title:
        raise InvalidInput("a title is required", field="title")
    if len(title) > TITLE_MAX:
        raise InvalidInput(f"a title has at most {TITLE_MAX} characters", field="title")
    return title


def _check_priority(priority: int) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise InvalidInput(f"priority must be a whole number from {PRIORITY_MIN} to {PRIORITY_MAX}", field="priority")
    return priority


def _check_max_retries(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES_LIMIT:
        raise InvalidInput(f"max_retries must be from 0 to {MAX_RETRIES_LIMIT}", field="max_retries")
    return value


def _check_parameters(executor: str, parameters: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise InvalidInput("parameters must be a JSON object", field="parameters")
    try:
        json.dumps(parameters, cls=DjangoJSONEncoder)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"parameters must be JSON: {exc}", field="parameters") from exc
    implementation = get_executor(executor)
    checked = implementation.validate(dict(parameters))
    return checked, implementation.breaker_key(executor, checked)[:120]


def _check_assignee(organization: Organization, assignee: User | Assignee | None) -> dict[str, Any]:
    if assignee is None:
        return {"assignee_kind": AssigneeKind.NONE, "assignee_user": None, "assignee_ref": ""}
    if isinstance(assignee, User):
        assignee = Assignee(kind=AssigneeKind.USER, user=assignee)
    _choice(assignee.kind, AssigneeKind, "assignee")
    if assignee.kind == AssigneeKind.USER:
        user = assignee.user
        if user is None or not Membership.objects.for_org(organization).filter(user=user).exists():
            raise InvalidInput("the assignee is not a member of this organization", field="assignee")
        return {"assignee_kind": AssigneeKind.USER, "assignee_user": user, "assignee_ref": ""}
    if not assignee.ref or len(assignee.ref) > 64:
        raise InvalidInput(f"an {assignee.kind} assignee needs its id", field="assignee")
    return {"assignee_kind": assignee.kind, "assignee_user": None, "assignee_ref": assignee.ref}


def _resolve_tasks(organization: Organization, items: Iterable[Task | int], field: str) -> list[Task]:
    ids: list[int] = []
    for item in items:
        pk = item.pk if isinstance(item, Task) else item
        if isinstance(pk, bool) or not isinstance(pk, int):
            raise InvalidInput(f"{pk!r} is not a task id", field=field)
        ids.append(pk)
    found = {t.pk: t for t in Task.objects.for_org(organization).filter(pk__in=ids)}
    missing = [pk for pk in ids if pk not in found]
    if missing:
        raise InvalidInput(
            f"no task {', '.join(f'#{pk}' for pk in missing)} in this organization", field=field, code="not_found"
        )
    return [found[pk] for pk in dict.fromkeys(ids)]


def _actor(actor: User | None) -> User | None:
    return actor if actor is not None and actor.pk else None


def _snapshot(task: Task) -> dict[str, Any]:
    return {
        "title": task.title,
        "status": task.status,
        "priority": task.priority,
        "executor": task.executor,
        "execution_type": task.execution_type,
        "due_at": task.due_at,
        "assignee_kind": task.assignee_kind,
        "assignee_user": task.assignee_user_id,
        "assignee_ref": task.assignee_ref,
    }


def task_create(
    *,
    organization: Organization,
    actor: User | None,
    title: str,
    description: str = "",
    source: str,
    execution_type: str = ExecutionType.FULLY_AUTOMATED,
    executor: str = "noop",
    parameters: dict[str, Any] | None = None,
    priority: int = Priority.NORMAL,
    due_at: datetime | None = None,
    parent: Task | None = None,
    depends_on: Iterable[Task | int] = (),
    assignee: User | Assignee | None = None,
    max_retries: int | None = None,
    step_key: str = "",
    on_dependency_failure: str = DependencyFailurePolicy.SKIP,
    run_if_dependency_failed: bool = False,
    ai_confidence: float | None = None,
    ai_context: dict[str, Any] | None = None,
    actor_label: str = "",
) -> Task:
    """Create a task, log its ``created`` event, and queue it on commit when it can run.

    Validates every field (unknown executor, bad parameters, foreign
    dependencies or parent → InvalidInput naming the field). A
    ``fully_automated`` task whose dependencies are all complete is queued
    and its message published after commit; one with a failed dependency is
    skipped or blocked per ``on_dependency_failure``; manual and
    semi-automated tasks wait for a person (``task_execute``). ``actor`` is
    None for system callers (say who in ``actor_label``, e.g. ``schedule:7``).
    Returns the saved task.
    """
    title = _check_title(title)
    _choice(source, TaskSource, "source")
    _choice(execution_type, ExecutionType, "execution_type")
    _choice(on_dependency_failure, DependencyFailurePolicy, "on_dependency_failure")
    priority = _check_priority(priority)
    max_retries = _check_max_retries(conf.default_max_retries() if max_retries is None else max_retries)
    parameters, breaker_key = _check_parameters(executor, parameters)
    if ai_confidence is not None and not 0 <= ai_confidence <= 1:
        raise InvalidInput("ai_confidence must be between 0 and 1", field="ai_confidence")
    if len(step_key) > 120:
        raise InvalidInput("step_key has at most 120 characters", field="step_key")
    assignment = _check_assignee(organization, assignee)
    with transaction.atomic():
        if parent is not None:
            parent = _resolve_tasks(organization, [parent], "parent")[0]
            if parent.status in FINAL:
                raise InvalidInput(f"the parent task {parent.label} is {parent.status}", field="parent")
        dependencies = _resolve_tasks(organization, depends_on, "depends_on")
        task = Task(
            organization=organization,
            title=title,
            description=description or "",
            source=source,
            execution_type=execution_type,
            executor=executor,
            parameters=parameters,
            breaker_key=breaker_key,
            priority=priority,
            due_at=due_at,
            parent=parent,
            step_key=step_key,
            on_dependency_failure=on_dependency_failure,
            run_if_dependency_failed=run_if_dependency_failed,
            max_retries=max_retries,
            ai_confidence=ai_confidence,
            ai_context=ai_context or {},
            created_by=_actor(actor),
            last_modified_by=_actor(actor),
            estimated_duration=estimate_duration(
                organization_id=organization.pk, executor=executor, title=title, step_key=step_key
            ),
            **assignment,
        )
        task.save(force_insert=True)
        if dependencies:
            graph.lock_dependency_graph(organization.pk)
            for dependency in dependencies:
                graph.add_edge(task=task, depends_on=dependency)
        event_append(
            task=task, type="created", actor=actor, actor_label=actor_label,
            payload={**_snapshot(task), "source": source, "parent": parent.pk if parent else None,
                     "depends_on": [d.pk for d in dependencies],
                     "estimated_seconds": task.estimated_duration.total_seconds()
                     if task.estimated_duration else None},
        )
        if _actor(actor) is not None:
            audit_record(organization=organization, actor=actor, action="task.created", target=task,
                         after=_snapshot(task))
        graph.evaluate(task, actor=actor, actor_label=actor_label)
    return task


def lock(task: Task) -> Task:
    """A fresh, row-locked copy of ``task`` (call inside a transaction)."""
    return Task.objects.for_org(task.organization).select_for_update().get(pk=task.pk)


UPDATABLE = frozenset({
    "title", "description", "priority", "due_at", "assignee", "parameters", "max_retries",
    "on_dependency_failure", "run_if_dependency_failed", "ai_confidence", "ai_context",
})


def task_update(*, task: Task, actor: User | None, actor_label: str = "", **changes: Any) -> Task:
    """Change a task's descriptive fields (not its status: use the actions).

    Accepts the keys in ``UPDATABLE``; ``parameters`` only before the task has
    started (pending, paused, blocked by a dependency, failed). A finished
    task (completed or cancelled) cannot be changed.
    """
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise InvalidInput(f"cannot update {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    with transaction.atomic():
        task = lock(task)
        if task.status in FINAL:
            raise InvalidInput(f"task {task.label} is {task.status} and can no longer change", field="status",
                               code="final_state")
        before = _snapshot(task)
        fields: dict[str, Any] = {}
        if "title" in changes:
            fields["title"] = _check_title(changes["title"])
        if "description" in changes:
            fields["description"] = changes["description"] or ""
        if "priority" in changes:
            fields["priority"] = _check_priority(changes["priority"])
            if task.status == S.QUEUED and task.queued_at is not None:
                fields["dispatch_rank"] = dispatch_rank(fields["priority"], task.queued_at)
        if "due_at" in changes:
            fields["due_at"] = changes["due_at"]
        if "assignee" in changes:
            fields.update(_check_assignee(task.organization, changes["assignee"]))
        if "max_retries" in changes:
            fields["max_retries"] = _check_max_retries(changes["max_retries"])
        if "on_dependency_failure" in changes:
            fields["on_dependency_failure"] = _choice(
                changes["on_dependency_failure"], DependencyFailurePolicy, "on_dependency_failure"
            )
        if "run_if_dependency_failed" in changes:
            fields["run_if_dependency_failed"] = bool(changes["run_if_dependency_failed"])
        if "ai_confidence" in changes:
            value = changes["ai_confidence"]
            if value is not None and not 0 <= value <= 1:
                raise InvalidInput("ai_confidence must be between 0 and 1", field="ai_confidence")
            fields["ai_confidence"] = value
        if "ai_context" in changes:
            fields["ai_context"] = changes["ai_context"] or {}
        if "parameters" in changes:
            startable = task.status in (S.PENDING, S.PAUSED, S.FAILED) or (
                task.status == S.BLOCKED and task.blocked_kind == BlockedKind.DEPENDENCY
            )
            if not startable:
                raise InvalidInput(f"parameters cannot change while the task is {task.status}", field="parameters")
            fields["parameters"], fields["breaker_key"] = _check_parameters(task.executor, changes["parameters"])
        fields["last_modified_by"] = _actor(actor)
        for name, value in fields.items():
            setattr(task, name, value)
        task.save(update_fields=[*fields, "updated_at"])
        changed = sorted(k for k in fields if k not in ("last_modified_by", "dispatch_rank", "breaker_key"))
        event_append(task=task, type="updated", actor=actor, actor_label=actor_label,
                     payload={"fields": changed})
        if _actor(actor) is not None:
            audit_record(organization=task.organization, actor=actor, action="task.updated", target=task,
                         before=before, after=_snapshot(task))
        if "run_if_dependency_failed" in fields or "on_dependency_failure" in fields:
            graph.evaluate(task, actor=actor, actor_label=actor_label)
    return task


def task_execute(*, task: Task, actor: User | None, actor_label: str = "") -> Task:
    """Run a waiting task's executor: now if its dependencies are done, else as soon as they are.

    Approves semi-automated tasks (and re-releases automated ones that wait).
    Manual tasks are done by people (``task_start`` / ``task_complete``).
    """
    with transaction.atomic():
        task = lock(task)
        if task.execution_type == ExecutionType.MANUAL:
            raise InvalidInput(f"task {task.label} is manual: a person does it (start or complete it instead)",
                               field="execution_type")
        if task.status != S.PENDING:
            raise InvalidInput(f"task {task.label} is {task.status}; only a pending task can be executed "
                               "(use retry for a failed one)", field="status", code="illegal_transition")
        check_transition(task, S.QUEUED)
        task.release_approved = True
        task.save(update_fields=["release_approved", "updated_at"])
        event_append(task=task, type="execution_requested", actor=actor, actor_label=actor_label)
        if _actor(actor) is not None:
            audit_record(organization=task.organization, actor=actor, action="task.executed", target=task)
        graph.evaluate(task, actor=actor, actor_label=actor_label)
    return task


def task_cancel(*, task: Task, actor: User | None, reason: str = "", actor_label: str = "") -> Task:
    """Cancel a task that has not finished, its unfinished subtasks, and skip what waits on it.

    A running attempt is abandoned: its worker's result is discarded when it
    reports back (the lease is gone). Cancelling a completed or cancelled
    task is refused.
    """
    with transaction.atomic():
        task = lock(task)
        check_transition(task, S.CANCELLED)
        task_transition(task=task, to=S.CANCELLED, actor=actor, actor_label=actor_label,
                        reason=reason or "cancelled")
        if _actor(actor) is not None:
            audit_record(organization=task.organization, actor=actor, action="task.cancelled", target=task,
                         after={"reason": reason})
        _cancel_subtasks(task, actor=actor, actor_label=actor_label)
        graph.after_terminal(task, actor=actor, actor_label=actor_label)
    return task


def _cancel_subtasks(parent: Task, *, actor: User | None, actor_label: str) -> None:
    children = Task.objects.for_org(parent.organization).select_for_update().filter(
        parent=parent, status__in=ACTIVE
    ).order_by("pk")
    for child in children:
        task_transition(task=child, to=S.CANCELLED, actor=actor, actor_label=actor_label,
                        reason=f"parent {parent.label} was cancelled")
        _cancel_subtasks(child, actor=actor, actor_label=actor_label)
        graph.release_dependents(child, actor=actor, actor_label=actor_label)


def task_retry(*, task: Task, actor: User | None, actor_label: str = "") -> Task:
    """Run a failed task again; what was skipped or blocked because of it waits for it again.

    The retry budget starts over, and a new retry generation begins: a tool
    step calls its tool again (a new idempotency key) instead of replaying the
    stored failure, which is what the person asked for. The task is queued at once when its
    dependencies are done; a parent that failed because of this subtask
    goes back to waiting for its subtasks.
    """
    with transaction.atomic():
        task = lock(task)
        if task.status != S.FAILED:
            raise InvalidInput(f"task {task.label} is {task.status}; only a failed task can be retried",
                               field="status", code="illegal_transition")
        task_transition(task=task, to=S.PENDING, actor=actor, actor_label=actor_label, reason="retry requested",
                        fields={"retry_count": 0, "release_approved": True,
                                "retry_generation": task.retry_generation + 1})
        if _actor(actor) is not None:
            audit_record(organization=task.organization, actor=actor, action="task.retried", target=task)
        graph.reopen_downstream(task, actor=actor, actor_label=actor_label)
        graph.reopen_parent(task, actor=actor, actor_label=actor_label)
        graph.evaluate(task, actor=actor, actor_label=actor_label)
    return task


def task_pause(*, task: Task, actor: User | None, actor_label: str = "") -> Task:
    """Hold a pending or queued task: it will not start until resumed."""
    with transaction.atomic():
        task = lock(task)
        task_transition(task=task, to=S.PAUSED, actor=actor, actor_label=actor_label, reason="paused")
    return task


def task_resume(*, task: Task, actor: User | None, reason: str = "", actor_label: str = "") -> Task:
    """Let a paused or blocked task go on.

    Paused, or blocked by hand: back to waiting for its dependencies (queued
    if they are done). Parked by its executor (e.g. an approval was granted):
    queued so the executor runs again and sees the new state.
    """
    with transaction.atomic():
        task = lock(task)
        if task.status == S.PAUSED or (task.status == S.BLOCKED and task.blocked_kind == BlockedKind.MANUAL):
            task_transition(task=task, to=S.PENDING, actor=actor, actor_label=actor_label,
                            reason=reason or "resumed")
            graph.evaluate(task, actor=actor, actor_label=actor_label)
        elif task.status == S.BLOCKED and task.blocked_kind == BlockedKind.PARKED:
            dispatch.enqueue(task, actor=actor, actor_label=actor_label, reason=reason or "resumed")
        else:
            raise InvalidInput(f"task {task.label} is {task.status}"
                               + (f" ({task.blocked_kind})" if task.blocked_kind else "")
                               + "; only a paused or parked task can be resumed",
                               field="status", code="illegal_transition")
    return task


def task_start(*, task: Task, actor: User | None, actor_label: str = "") -> Task:
    """A person starts a manual task (pending → in progress)."""
    with transaction.atomic():
        task = lock(task)
        if task.execution_type != ExecutionType.MANUAL:
            raise InvalidInput(f"task {task.label} is run by the engine; use execute", field="execution_type")
        unfinished = graph.unfinished_dependencies(task)
        if unfinished:
            raise InvalidInput(f"task {task.label} waits for: {'; '.join(unfinished)}", field="status")
        task_transition(task=task, to=S.IN_PROGRESS, actor=actor, actor_label=actor_label, reason="started")
    return task


def task_complete(
    *, task: Task, actor: User | None, result: Any = None, actor_label: str = "", reason: str = ""
) -> Task:
    """Mark a manual task done, or finish a parked task with ``result`` (e.g. an approval decided it).

    Releases the tasks that wait for it and settles its parent.
    """
    with transaction.atomic():
        task = lock(task)
        manual = task.execution_type == ExecutionType.MANUAL and task.status in (S.PENDING, S.IN_PROGRESS)
        parked = task.status == S.BLOCKED and task.blocked_kind in (BlockedKind.PARKED, BlockedKind.MANUAL)
        if not (manual or parked):
            raise InvalidInput(f"task {task.label} is {task.status}; only a manual task or a parked task can be "
                               "completed by hand", field="status", code="illegal_transition")
        if manual:
            unfinished = graph.unfinished_dependencies(task)
            if unfinished:
                raise InvalidInput(f"task {task.label} waits for: {'; '.join(unfinished)}", field="status")
        now = timezone.now()
        began = task.started_at or task.created_at
        task_transition(task=task, to=S.COMPLETED, actor=actor, actor_label=actor_label, reason=reason,
                        fields={"result": result, "actual_duration": now - began if manual else task.actual_duration})
        if _actor(actor) is not None:
            audit_record(organization=task.organization, actor=actor, action="task.completed", target=task)
        graph.after_terminal(task, actor=actor, actor_label=actor_label)
    return task


def task_fail(*, task: Task, actor: User | None, reason: str, actor_label: str = "") -> Task:
    """Fail a parked task or a manual one in progress (e.g. an approval was rejected), naming why.

    What waits on it is skipped or blocked per its policy, as for any failure.
    """
    if not reason:
        raise InvalidInput("say why the task failed", field="reason")
    with transaction.atomic():
        task = lock(task)
        manual = task.execution_type == ExecutionType.MANUAL and task.status == S.IN_PROGRESS
        parked = task.status == S.BLOCKED and task.blocked_kind in (BlockedKind.PARKED, BlockedKind.MANUAL)
        if not (manual or parked):
            raise InvalidInput(f"task {task.label} is {task.status}; only a parked or manual task in progress can "
                               "be failed by hand", field="status", code="illegal_transition")
        task_transition(task=task, to=S.FAILED, actor=actor, actor_label=actor_label, reason=reason)
        if _actor(actor) is not None:
            audit_record(organization=task.organization, actor=actor, action="task.failed", target=task,
                         after={"reason": reason})
        graph.after_terminal(task, actor=actor, actor_label=actor_label)
    return task


def task_block(*, task: Task, actor: User | None, reason: str, actor_label: str = "") -> Task:
    """Block a task by hand (it will not run until resumed), with a reason."""
    if not reason:
        raise InvalidInput("say why the task is blocked", field="reason")
    with transaction.atomic():
        task = lock(task)
        if task.status not in (S.PENDING, S.IN_PROGRESS) or (task.status == S.IN_PROGRESS and task.lease_token):
            raise InvalidInput(f"task {task.label} is {task.status} and cannot be blocked by hand", field="status",
                               code="illegal_transition")
        task_transition(task=task, to=S.BLOCKED, actor=actor, actor_label=actor_label, reason=reason,
                        fields={"blocked_kind": BlockedKind.MANUAL, "blocked_reason": reason})
    return task


def dependency_add(*, task: Task, depends_on: Task | int, actor: User | None, actor_label: str = "") -> Task:
    """Make ``task`` wait for ``depends_on``; a cycle is refused naming it.

    Only a task that has not started can gain a dependency (a queued one goes
    back to pending until the new dependency completes).
    """
    with transaction.atomic():
        graph.lock_dependency_graph(task.organization_id)
        task = lock(task)
        dependency = _resolve_tasks(task.organization, [depends_on], "depends_on")[0]
        if task.status not in (S.PENDING, S.QUEUED, S.PAUSED, S.BLOCKED):
            raise InvalidInput(f"task {task.label} is {task.status}; dependencies can only be added before it runs",
                               field="depends_on", code="illegal_transition")
        graph.add_edge(task=task, depends_on=dependency)
        event_append(task=task, type="dependency_added", actor=actor, actor_label=actor_label,
                     payload={"depends_on": dependency.pk, "title": dependency.title})
        if _actor(actor) is not None:
            audit_record(organization=task.organization, actor=actor, action="task.dependency_added", target=task,
                         after={"depends_on": dependency.pk})
        if task.status == S.QUEUED and dependency.status != S.COMPLETED:
            task_transition(task=task, to=S.PENDING, actor=actor, actor_label=actor_label,
                            reason=f"waits for {dependency.label}")
        graph.evaluate(task, actor=actor, actor_label=actor_label)
    return task


def dependency_remove(*, task: Task, depends_on: Task | int, actor: User | None, actor_label: str = "") -> Task:
    """Stop ``task`` waiting for ``depends_on``; it may then be released at once."""
    with transaction.atomic():
        graph.lock_dependency_graph(task.organization_id)
        task = lock(task)
        dependency = _resolve_tasks(task.organization, [depends_on], "depends_on")[0]
        deleted, _ = TaskDependency.objects.for_org(task.organization).filter(task=task, depends_on=dependency).delete()
        if not deleted:
            raise InvalidInput(f"task {task.label} does not depend on {dependency.label}", field="depends_on",
                               code="not_found")
        event_append(task=task, type="dependency_removed", actor=actor, actor_label=actor_label,
                     payload={"depends_on": dependency.pk})
        if _actor(actor) is not None:
            audit_record(organization=task.organization, actor=actor, action="task.dependency_removed", target=task,
                         before={"depends_on": dependency.pk})
        if task.status == S.BLOCKED and task.blocked_kind == BlockedKind.DEPENDENCY:
            task_transition(task=task, to=S.PENDING, actor=actor, actor_label=actor_label,
                            reason=f"no longer waits for {dependency.label}")
        graph.evaluate(task, actor=actor, actor_label=actor_label)
    return task
