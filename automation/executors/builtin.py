"""Built-in executors: noop, wait and subflow (the tool executor lives in ``tool.py``)."""

from __future__ import annotations

from typing import Any

from accounts.errors import InvalidInput
from automation import conf
from automation.executors.base import BaseExecutor, Effect, ExecutionContext, ExecutionResult
from automation.executors.registry import register_executor


def _check_effects(parameters: dict[str, Any]) -> list[dict[str, Any]]:
    effects = parameters.get("effects", [])
    if not isinstance(effects, list):
        raise InvalidInput("effects is a list of {key, kind, payload}", field="parameters.effects")
    for effect in effects:
        if (
            not isinstance(effect, dict)
            or not isinstance(effect.get("key"), str)
            or not effect["key"]
            or not isinstance(effect.get("kind", "record"), str)
            or not isinstance(effect.get("payload", {}), dict)
        ):
            raise InvalidInput("each effect needs a key, a kind and an object payload", field="parameters.effects")
    return effects


def _effects(parameters: dict[str, Any]) -> list[Effect]:
    return [
        Effect(key=e["key"], kind=e.get("kind", "record"), payload=e.get("payload", {}))
        for e in parameters.get("effects", [])
    ]


class NoopExecutor(BaseExecutor):
    """Completes at once with ``parameters.output``; records ``parameters.effects`` in the outbox."""

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        _check_effects(parameters)
        return parameters

    def execute(self, context: ExecutionContext) -> ExecutionResult:
        return ExecutionResult.completed(context.parameters.get("output"), effects=_effects(context.parameters))


class WaitExecutor(BaseExecutor):
    """Waits ``parameters.seconds`` (renewing its lease), then completes like noop.

    Longer waits than one attempt may take belong in a schedule, not here.
    """

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        seconds = parameters.get("seconds", 1)
        limit = conf.run_timeout_seconds() - 5
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= limit:
            raise InvalidInput(f"seconds must be a number from 0 to {limit:g}", field="parameters.seconds")
        _check_effects(parameters)
        return {**parameters, "seconds": seconds}

    def execute(self, context: ExecutionContext) -> ExecutionResult:
        seconds = float(context.parameters.get("seconds", 1))
        context.log(f"waiting {seconds:g} s")
        if not context.sleep(seconds):
            return ExecutionResult.failed("the task was taken back while waiting", retryable=False)
        context.log("done waiting")
        return ExecutionResult.completed(context.parameters.get("output"), effects=_effects(context.parameters))


class SubflowExecutor(BaseExecutor):
    """Creates the task's subtasks from ``parameters.steps`` and waits for them.

    The task completes when every subtask has completed (its result maps step
    keys to their results) and fails naming the first subtask that failed.
    Running it again (a retry) reuses the existing subtasks and retries the
    failed ones.
    """

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        from automation.services.subtasks import validate_steps

        try:
            steps = validate_steps(parameters.get("steps"))
        except InvalidInput as exc:
            raise InvalidInput(exc.message, field=f"parameters.{exc.field or 'steps'}", code=exc.code) from None
        return {**parameters, "steps": steps}

    def execute(self, context: ExecutionContext) -> ExecutionResult:
        from automation.models import Task, TaskStatus
        from automation.services.subtasks import subtasks_create
        from automation.services.tasks import task_retry

        children = subtasks_create(parent=context.task, steps=context.parameters["steps"],
                                   actor_label=f"subflow:{context.task.pk}")
        retried = 0
        for child in children.values():
            fresh = Task.objects.dangerously_unscoped().get(pk=child.pk)
            if fresh.status == TaskStatus.FAILED:
                task_retry(task=fresh, actor=None, actor_label=f"subflow:{context.task.pk}")
                retried += 1
        context.log(f"{len(children)} subtasks" + (f", {retried} retried" if retried else ""))
        return ExecutionResult.parked("waiting for its subtasks", kind="subtasks",
                                      output={"subtasks": {k: t.pk for k, t in children.items()}})


def register_builtins() -> None:
    register_executor("noop", NoopExecutor(), replace=True)
    register_executor("wait", WaitExecutor(), replace=True)
    register_executor("subflow", SubflowExecutor(), replace=True)
