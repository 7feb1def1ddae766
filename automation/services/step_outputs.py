"""Later steps read earlier steps' results: ``{{ steps.<key>.<path> }}`` in a step's parameters.

A workflow (or subflow) step may refer to the result of another step of the
same parent task, e.g. ``{{ steps.offer_letter.path }}`` for the ``path``
the ``offer_letter`` step's tool returned, or ``{{ steps.hris.employee_id }}``.
The path walks object keys and list indexes (``steps.mail.to.0``).

References are resolved when the step runs (the texts saved with the task
keep them, so its record shows where each value came from): a text that is
exactly one reference takes the referenced value as it is (a number, a list,
an object); a reference inside longer text is replaced by the value as text.
A step may only refer to steps it depends on (directly or through other
steps): the workflow definition is refused otherwise, so the referenced
result always exists when the step starts. At run time a reference to a step
that did not complete, or to a path its result lacks, fails the attempt for
good with a message naming it.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from accounts.errors import InvalidInput

if TYPE_CHECKING:
    from automation.models import Task

STEP_REFERENCE = re.compile(r"\{\{\s*steps\.([A-Za-z0-9_-]+)((?:\.[A-Za-z0-9_-]+)*)\s*\}\}")
"""``{{ steps.<step key>.<path> }}``; step keys in references are letters, digits, ``_`` and ``-``."""
CONTAINERS = frozenset({"subflow"})
"""Executors whose parameters hold other steps (not resolved for the container itself)."""


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _texts(item)]
    return []


def referenced_steps(value: Any) -> set[str]:
    """The step keys that ``value`` (parameters, any nesting) refers to."""
    return {match.group(1) for text in _texts(value) for match in STEP_REFERENCE.finditer(text)}


def has_step_references(value: Any) -> bool:
    return any("steps." in text and STEP_REFERENCE.search(text) for text in _texts(value))


def upstream_keys(key: str, depends_on: dict[str, list[str]]) -> set[str]:
    """Every step ``key`` waits for, directly or through other steps (``depends_on`` maps key → its dependencies)."""
    seen: set[str] = set()
    frontier = list(depends_on.get(key, []))
    while frontier:
        current = frontier.pop()
        if current in seen:
            continue
        seen.add(current)
        frontier.extend(depends_on.get(current, []))
    return seen


def check_step_references(steps: list[dict[str, Any]]) -> None:
    """Refuse a reference to an unknown step, or to a step the referring step does not wait for.

    ``steps`` are validated steps (``key``, ``depends_on``, ``parameters``);
    the error names the step (``steps[2].parameters``).
    """
    keys = {step["key"] for step in steps}
    graph = {step["key"]: list(step.get("depends_on") or []) for step in steps}
    for index, step in enumerate(steps):
        referenced = referenced_steps({k: v for k, v in step.items() if k not in ("key", "depends_on")})
        if not referenced:
            continue
        unknown = sorted(referenced - keys)
        if unknown:
            raise InvalidInput(f"step {step['key']!r} refers to unknown step(s): {', '.join(unknown)}",
                               field=f"steps[{index}].parameters")
        upstream = upstream_keys(step["key"], graph)
        not_waited = sorted(referenced - upstream)
        if not_waited:
            raise InvalidInput(
                f"step {step['key']!r} uses the result of {', '.join(not_waited)} without depending on it; "
                "add it to depends_on", field=f"steps[{index}].depends_on")


# --- resolving at run time -------------------------------------------------------------------------


def _walk(result: Any, key: str, path: str) -> Any:
    value = result
    walked = f"steps.{key}"
    for part in [p for p in path.split(".") if p]:
        walked += f".{part}"
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise InvalidInput(f"the result of step {key!r} has no {walked[len(f'steps.{key}.'):]!r} "
                               f"(it has {_shape(result)})", field="parameters", code="step_output_missing")
    return value


def _shape(result: Any) -> str:
    if isinstance(result, dict):
        return "keys " + (", ".join(sorted(map(str, result))[:20]) or "none")
    return f"a {type(result).__name__}"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


class _Results:
    """The results of the steps of ``task``'s parent, looked up once per key."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self._cache: dict[str, Any] = {}
        self._step_keys: dict[str, str] | None = None

    def _mapping(self) -> dict[str, str]:
        from automation.models import Task

        if self._step_keys is None:
            parent = (
                Task.objects.dangerously_unscoped()
                .filter(organization_id=self.task.organization_id, pk=self.task.parent_id)
                .values_list("parameters", flat=True)
                .first()
            )
            steps = (parent or {}).get("steps") or []
            self._step_keys = {
                str(step["key"]): str(step.get("step_key") or step["key"])
                for step in steps if isinstance(step, dict) and step.get("key")
            }
        return self._step_keys

    def get(self, key: str) -> Any:
        from automation.models import Task, TaskStatus

        if key in self._cache:
            return self._cache[key]
        step_key = self._mapping().get(key)
        if step_key is None:
            raise InvalidInput(f"step {key!r} is not a step of this workflow", field="parameters",
                               code="step_output_missing")
        rows = list(
            Task.objects.dangerously_unscoped()
            .filter(organization_id=self.task.organization_id, parent_id=self.task.parent_id, step_key=step_key)
            .values_list("status", "result")[:2]
        )
        if len(rows) != 1:
            raise InvalidInput(f"step {key!r} was not found exactly once in this workflow run", field="parameters",
                               code="step_output_missing")
        status, result = rows[0]
        if status != TaskStatus.COMPLETED:
            raise InvalidInput(f"step {key!r} has not completed (it is {status}); its result is not available",
                               field="parameters", code="step_output_missing")
        self._cache[key] = result
        return result


def resolve_step_outputs(task: Task, parameters: dict[str, Any]) -> dict[str, Any]:
    """``parameters`` with every ``{{ steps.… }}`` reference replaced by the referenced step's result.

    Raises InvalidInput (a permanent failure of the attempt) naming a step
    that has not completed or a path its result lacks. Parameters without a
    reference are returned unchanged, without a query. A subflow's parameters
    are its steps, whose references are its subtasks' to resolve, and a task
    that is no step of a parent has no steps to refer to: both are left as
    they are.
    """
    if task.parent_id is None or task.executor in CONTAINERS or not has_step_references(parameters):
        return parameters
    results = _Results(task)

    def value_of(match: re.Match[str]) -> Any:
        return _walk(results.get(match.group(1)), match.group(1), match.group(2))

    def render(value: Any) -> Any:
        if isinstance(value, str):
            whole = STEP_REFERENCE.fullmatch(value.strip())
            if whole:
                return value_of(whole)
            return STEP_REFERENCE.sub(lambda m: _as_text(value_of(m)), value)
        if isinstance(value, dict):
            return {k: render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [render(v) for v in value]
        return value

    return render(parameters)
