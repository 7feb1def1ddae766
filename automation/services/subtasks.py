"""A parent task's subtasks from a list of steps (what the ``subflow`` executor and workflows start).

A step is a dict::

    {"key": "collect", "title": "Collect figures", "executor": "noop",
     "parameters": {}, "depends_on": ["other-key"], "on_dependency_failure": "skip",
     "run_if_dependency_failed": False, "max_retries": 3, "priority": 50,
     "execution_type": "fully_automated", "description": "", "step_key": "weekly-report:collect"}

Only ``key`` and ``title`` are required. ``step_key`` (default: ``key``)
groups runs of the same step across instances for duration predictions.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.errors import InvalidInput
from accounts.models import User
from automation.executors import get_executor
from automation.models import DependencyFailurePolicy, ExecutionType, Task, TaskSource

MAX_STEPS = 500
_STEP_FIELDS = {
    "key", "title", "description", "executor", "parameters", "depends_on", "on_dependency_failure",
    "run_if_dependency_failed", "max_retries", "priority", "execution_type", "step_key",
}


def _field(index: int, name: str) -> str:
    return f"steps[{index}].{name}"


def find_step_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """A cycle among step keys (``[a, b, a]``), or None. ``edges`` maps a key to the keys it depends on."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in edges:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def validate_steps(steps: Any) -> list[dict[str, Any]]:
    """Check a list of steps (keys unique, executors known, dependencies known, no cycle); return them normalized.

    Errors are InvalidInput naming the step field, e.g. ``steps[2].depends_on``;
    a cycle is named by its keys: ``a → b → a``.
    """
    if not isinstance(steps, list) or not steps:
        raise InvalidInput("steps must be a non-empty list", field="steps")
    if len(steps) > MAX_STEPS:
        raise InvalidInput(f"at most {MAX_STEPS} steps", field="steps")
    normalized: list[dict[str, Any]] = []
    keys: set[str] = set()
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            raise InvalidInput("a step is an object", field=f"steps[{index}]")
        unknown = set(step) - _STEP_FIELDS
        if unknown:
            raise InvalidInput(f"unknown step field(s): {', '.join(sorted(unknown))}", field=f"steps[{index}]")
        key = step.get("key")
        if not isinstance(key, str) or not key or len(key) > 100:
            raise InvalidInput("a step needs a key (1–100 characters)", field=_field(index, "key"))
        if key in keys:
            raise InvalidInput(f"the key {key!r} is used twice", field=_field(index, "key"))
        keys.add(key)
        title = step.get("title")
        if not isinstance(title, str) or not title.strip():
            raise InvalidInput("a step needs a title", field=_field(index, "title"))
        executor = step.get("executor", "noop")
        try:
            implementation = get_executor(executor)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, field=_field(index, "executor"), code=exc.code) from None
        parameters = step.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise InvalidInput("parameters must be an object", field=_field(index, "parameters"))
        try:
            parameters = implementation.validate(dict(parameters))
        except InvalidInput as exc:
            raise InvalidInput(exc.message, field=_field(index, "parameters"), code=exc.code) from None
        depends_on = step.get("depends_on") or []
        if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
            raise InvalidInput("depends_on is a list of step keys", field=_field(index, "depends_on"))
        policy = step.get("on_dependency_failure", DependencyFailurePolicy.SKIP)
        if policy not in DependencyFailurePolicy.values:
            raise InvalidInput("on_dependency_failure is skip or block", field=_field(index, "on_dependency_failure"))
        execution_type = step.get("execution_type", ExecutionType.FULLY_AUTOMATED)
        if execution_type not in ExecutionType.values:
            raise InvalidInput(f"execution_type is one of {', '.join(ExecutionType.values)}",
                               field=_field(index, "execution_type"))
        normalized.append({**step, "executor": executor, "parameters": parameters, "depends_on": depends_on,
                           "on_dependency_failure": policy, "execution_type": execution_type})
    for index, step in enumerate(normalized):
        missing = [d for d in step["depends_on"] if d not in keys]
        if missing:
            raise InvalidInput(f"unknown step key(s): {', '.join(missing)}", field=_field(index, "depends_on"))
    cycle = find_step_cycle({s["key"]: s["depends_on"] for s in normalized})
    if cycle:
        raise InvalidInput(f"the steps form a cycle: {' → '.join(cycle)}", field="steps", code="cycle")
    return normalized


def _topological(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_key = {s["key"]: s for s in steps}
    done: set[str] = set()
    ordered: list[dict[str, Any]] = []

    def place(key: str) -> None:
        if key in done:
            return
        for dependency in by_key[key]["depends_on"]:
            place(dependency)
        done.add(key)
        ordered.append(by_key[key])

    for step in steps:
        place(step["key"])
    return ordered


def subtasks_create(
    *, parent: Task, steps: list[dict[str, Any]], actor: User | None = None, actor_label: str = "",
    source: str = TaskSource.WORKFLOW,
) -> dict[str, Task]:
    """Create ``parent``'s subtasks from ``steps`` with their dependencies; return them by step key.

    Idempotent: if the parent already has subtasks (a retried or resumed
    subflow), they are returned instead. Steps whose dependencies are done
    are queued on commit.
    """
    from automation.services.tasks import task_create

    steps = validate_steps(steps)
    with transaction.atomic():
        parent = Task.objects.dangerously_unscoped().select_for_update().get(pk=parent.pk)
        existing = list(Task.objects.dangerously_unscoped().filter(parent_id=parent.pk).order_by("pk"))
        if existing:
            return {t.step_key or str(t.pk): t for t in existing}
        created: dict[str, Task] = {}
        for step in _topological(steps):
            created[step["key"]] = task_create(
                organization=parent.organization,
                actor=actor,
                actor_label=actor_label,
                title=step["title"].strip(),
                description=step.get("description", ""),
                source=source,
                execution_type=step["execution_type"],
                executor=step["executor"],
                parameters=step["parameters"],
                priority=step.get("priority", parent.priority),
                parent=parent,
                depends_on=[created[d] for d in step["depends_on"]],
                max_retries=step.get("max_retries"),
                step_key=step.get("step_key") or step["key"],
                on_dependency_failure=step["on_dependency_failure"],
                run_if_dependency_failed=bool(step.get("run_if_dependency_failed", False)),
            )
    return created
