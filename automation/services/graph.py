"""Dependencies between tasks: cycle checks, event-driven release, failure propagation, reopening.

Release is event-driven: when a task finishes, the same transaction locks its
dependents, re-reads their dependencies and queues those now ready (the
message is published on commit). Two dependencies finishing at once cannot
both miss or both release a dependent: each locks the dependent's row before
reading, so the second sees the first's committed state, and only a
``pending`` dependent is released.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from accounts.errors import InvalidInput
from accounts.models import User
from automation.models import BlockedKind, DependencyFailurePolicy, ExecutionType, Task, TaskDependency, TaskStatus
from automation.services import dispatch
from automation.services.events import event_append
from automation.services.status import task_transition

S = TaskStatus

_DEPENDENCY_LOCK = 7302
"""First key of the advisory lock that serializes dependency changes per organization."""

FAILED_LIKE = frozenset({S.FAILED, S.SKIPPED, S.CANCELLED})


def lock_dependency_graph(organization_id: int) -> None:
    """Serialize dependency edits in one organization (two concurrent edits could close a cycle)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_DEPENDENCY_LOCK, organization_id])


def find_cycle(*, task: Task, depends_on: Task) -> list[int] | None:
    """The ids of the cycle that ``task`` waiting for ``depends_on`` would close, or None.

    The list starts and ends with ``task``: ``[task, depends_on, …, task]``,
    each waiting for the next. A cycle appears exactly when ``depends_on``
    already waits (transitively) for ``task``, so the search walks downstream
    from ``task``, one query per level and each task once: a new task, which
    nothing waits for yet, costs a single query however large the graph.
    """
    if task.pk == depends_on.pk:
        return [task.pk, task.pk]
    reached_from: dict[int, int] = {}
    seen = {task.pk}
    frontier = [task.pk]
    while frontier:
        rows = TaskDependency.objects.dangerously_unscoped().filter(depends_on_id__in=frontier).values_list(
            "depends_on_id", "task_id"
        )
        frontier = []
        for upstream, downstream in rows:
            if downstream in seen:
                continue
            seen.add(downstream)
            reached_from[downstream] = upstream
            if downstream == depends_on.pk:
                chain = [downstream]
                while chain[-1] != task.pk:
                    chain.append(reached_from[chain[-1]])
                return [task.pk, *chain]
            frontier.append(downstream)
    return None


def describe_cycle(ids: list[int], organization_id: int) -> str:
    """``'A' (#1) → 'B' (#2) → 'A' (#1)``."""
    titles = dict(
        Task.objects.dangerously_unscoped().filter(organization_id=organization_id, pk__in=set(ids))
        .values_list("pk", "title")
    )
    return " → ".join(f"{titles.get(pk, '?')!r} (#{pk})" for pk in ids)


def hold_upstream(task_id: int) -> None:
    """Share-lock a dependency's row until commit, so it cannot finish while an edge to it is being added.

    Without it a dependency could complete between the new edge's insert and
    the dependent's evaluation: its transaction would not see the uncommitted
    edge and the dependent's evaluation would not see the completion, leaving
    the dependent pending for ever. ``FOR SHARE`` conflicts with the row lock
    every status change takes, so one of the two transactions waits for the
    other and then sees its work.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM automation_task WHERE id = %s FOR SHARE", [task_id])


def add_edge(*, task: Task, depends_on: Task) -> TaskDependency:
    """Insert one dependency edge after checking organization and cycles (caller holds the graph lock)."""
    if task.organization_id != depends_on.organization_id:
        raise InvalidInput("a task can only depend on tasks of its own organization", field="depends_on")
    hold_upstream(depends_on.pk)
    cycle = find_cycle(task=task, depends_on=depends_on)
    if cycle is not None:
        raise InvalidInput(
            f"this dependency would create a cycle: {describe_cycle(cycle, task.organization_id)}",
            field="depends_on",
            code="cycle",
        )
    link, _ = TaskDependency.objects.for_org(task.organization).get_or_create(
        organization_id=task.organization_id, task=task, depends_on=depends_on
    )
    return link


def auto_release(task: Task) -> bool:
    """Whether the engine queues this task by itself once its dependencies are done.

    Never a manual task: a person does it (a retried manual task goes back to
    pending for them, it is not run by the engine).
    """
    if task.execution_type == ExecutionType.MANUAL:
        return False
    return task.execution_type == ExecutionType.FULLY_AUTOMATED or bool(task.release_approved)


def _dependency_rows(task: Task) -> list[tuple[int, str, str, str]]:
    return list(
        Task.objects.dangerously_unscoped()
        .filter(dependent_links__task_id=task.pk)
        .order_by("pk")
        .values_list("pk", "title", "status", "failure_reason")
    )


def evaluate(task: Task, *, actor: User | None = None, actor_label: str = "") -> str:
    """Decide what a locked ``pending`` task does given its dependencies; return the outcome.

    ``"released"``: every dependency is done (completed, or finished in any
    way when the task opted in with ``run_if_dependency_failed``) and the task
    is automated (or was approved to run): queued, published on commit.
    ``"ready"``: done but waiting for a person. ``"skipped"`` / ``"blocked"``:
    a dependency failed, per the task's policy, with a reason naming it.
    ``"waiting"``: a dependency is unfinished.
    """
    if task.status != S.PENDING:
        return "unchanged"
    rows = _dependency_rows(task)
    failed = [row for row in rows if row[2] in FAILED_LIKE]
    if failed and not task.run_if_dependency_failed:
        pk, title, status, why = failed[0]
        reason = f"dependency {title!r} (#{pk}) {status}"
        if status == S.SKIPPED and why:
            reason += f" ({why})"
        if task.on_dependency_failure == DependencyFailurePolicy.BLOCK:
            task_transition(task=task, to=S.BLOCKED, actor=actor, actor_label=actor_label, reason=reason,
                            fields={"blocked_kind": BlockedKind.DEPENDENCY, "blocked_reason": reason},
                            payload={"dependency": pk})
            return "blocked"
        task_transition(task=task, to=S.SKIPPED, actor=actor, actor_label=actor_label, reason=reason,
                        payload={"dependency": pk})
        after_terminal(task, actor=actor, actor_label=actor_label)
        return "skipped"
    done = {S.COMPLETED, *FAILED_LIKE} if task.run_if_dependency_failed else {S.COMPLETED}
    if any(row[2] not in done for row in rows):
        return "waiting"
    if not auto_release(task):
        return "ready"
    dispatch.enqueue(task, actor=actor, actor_label=actor_label,
                     reason="dependencies complete" if rows else "")
    return "released"


def _lock_many(ids: Iterable[int]) -> list[Task]:
    ids = sorted(set(ids))
    if not ids:
        return []
    return list(Task.objects.dangerously_unscoped().select_for_update().filter(pk__in=ids).order_by("pk"))


def release_dependents(task: Task, *, actor: User | None = None, actor_label: str = "") -> list[str]:
    """After ``task`` finished (in any way), evaluate each waiting dependent. Call in that transaction."""
    ids = TaskDependency.objects.dangerously_unscoped().filter(depends_on_id=task.pk).values_list("task_id", flat=True)
    outcomes = []
    for dependent in _lock_many(ids):
        outcomes.append(evaluate(dependent, actor=actor, actor_label=actor_label))
    return outcomes


def reopen_downstream(task: Task, *, actor: User | None = None, actor_label: str = "") -> list[int]:
    """Put tasks skipped or blocked because of ``task`` back to ``pending`` (``task`` is being retried).

    Walks the dependents transitively through skipped tasks; each reopened
    task is evaluated again (it waits for ``task``, or is skipped again if
    another of its dependencies also failed). Returns the reopened ids.
    """
    reopened: list[int] = []
    frontier = [task.pk]
    seen = {task.pk}
    while frontier:
        ids = TaskDependency.objects.dangerously_unscoped().filter(depends_on_id__in=frontier).values_list(
            "task_id", flat=True
        )
        frontier = []
        for dependent in _lock_many(i for i in ids if i not in seen):
            seen.add(dependent.pk)
            was_skipped = dependent.status == S.SKIPPED
            blocked_by_dependency = dependent.status == S.BLOCKED and dependent.blocked_kind == BlockedKind.DEPENDENCY
            if not (was_skipped or blocked_by_dependency):
                continue
            task_transition(task=dependent, to=S.PENDING, actor=actor, actor_label=actor_label,
                            reason=f"dependency {task.label} is being retried", payload={"reopened_by": task.pk})
            reopened.append(dependent.pk)
            if was_skipped:
                frontier.append(dependent.pk)
    for dependent in _lock_many(reopened):
        evaluate(dependent, actor=actor, actor_label=actor_label)
    return reopened


def unfinished_dependencies(task: Task) -> list[str]:
    """Labels of the dependencies that keep ``task`` from running."""
    done = {S.COMPLETED, *FAILED_LIKE} if task.run_if_dependency_failed else {S.COMPLETED}
    return [f"{title!r} (#{pk}) is {status}" for pk, title, status, _ in _dependency_rows(task) if status not in done]


def after_terminal(task: Task, *, actor: User | None = None, actor_label: str = "") -> None:
    """``task`` became completed, failed, skipped or cancelled: release (or skip) its dependents, settle its parent."""
    release_dependents(task, actor=actor, actor_label=actor_label)
    settle_parent(task, actor=actor, actor_label=actor_label)
    if task.status in (S.COMPLETED, S.FAILED):
        from automation.services.triggers import on_task_finished  # imports task services: load lazily

        on_task_finished(task)


def settle_parent(child: Task, *, actor: User | None = None, actor_label: str = "") -> None:
    """If ``child``'s parent waits for its subtasks and all are finished, finish the parent."""
    if child.parent_id is None:
        return
    parent = Task.objects.dangerously_unscoped().select_for_update().get(pk=child.parent_id)
    note_subtask_finished(parent, child, actor=actor, actor_label=actor_label)
    settle(parent, actor=actor, actor_label=actor_label)


def note_subtask_finished(parent: Task, child: Task, *, actor: User | None = None, actor_label: str = "") -> None:
    """Record on the (locked) parent's event log that one of its steps finished, and how.

    So a workflow's own log shows each step as it ends (``subtask_finished``
    with the step, its task, its status and the reason of a failure or skip).
    """
    event_append(task=parent, type="subtask_finished", actor=actor, actor_label=actor_label, payload={
        "subtask": child.pk, "step": child.step_key, "title": child.title[:200], "status": child.status,
        "reason": (child.failure_reason or "")[:500],
    })


def settle(parent: Task, *, actor: User | None = None, actor_label: str = "") -> str:
    """Finish a locked parent waiting for its subtasks once none is active: completed, or failed naming why."""
    if parent.status != S.BLOCKED or parent.blocked_kind != BlockedKind.SUBTASKS:
        return "unchanged"
    children = list(
        Task.objects.dangerously_unscoped().filter(parent_id=parent.pk).order_by("pk")
        .values_list("pk", "title", "status", "step_key", "result")
    )
    if any(status not in (S.COMPLETED, *FAILED_LIKE) for _, _, status, _, _ in children):
        return "waiting"
    problems = sorted((row for row in children if row[2] in FAILED_LIKE), key=lambda r: (r[2] != S.FAILED, r[0]))
    if problems:
        pk, title, status, _, _ = problems[0]
        reason = f"subtask {title!r} (#{pk}) {status}"
        task_transition(task=parent, to=S.FAILED, actor=actor, actor_label=actor_label, reason=reason,
                        payload={"subtask": pk})
        outcome = "failed"
    else:
        result = {"subtasks": {(key or str(pk)): value for pk, _, _, key, value in children}}
        task_transition(task=parent, to=S.COMPLETED, actor=actor, actor_label=actor_label,
                        reason="every subtask completed", fields={"result": result})
        outcome = "completed"
    after_terminal(parent, actor=actor, actor_label=actor_label)
    return outcome


def reopen_parent(child: Task, *, actor: User | None = None, actor_label: str = "") -> None:
    """A subtask is retried: a parent that failed because of its subtasks waits for them again (upwards)."""
    if child.parent_id is None:
        return
    parent = Task.objects.dangerously_unscoped().select_for_update().get(pk=child.parent_id)
    if parent.status != S.FAILED:
        return
    task_transition(task=parent, to=S.BLOCKED, actor=actor, actor_label=actor_label,
                    reason=f"subtask {child.label} is being retried",
                    fields={"blocked_kind": BlockedKind.SUBTASKS, "blocked_reason": "waiting for its subtasks"})
    reopen_downstream(parent, actor=actor, actor_label=actor_label)
    reopen_parent(parent, actor=actor, actor_label=actor_label)
