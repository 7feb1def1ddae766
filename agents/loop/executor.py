"""The automation engine's ``ai`` executor: a request goes to the Manager, a plan step to an Employee.

Parameters of a request task: ``{"request": "<what the person asked>"}``
(optional: the title and description are used otherwise), ``"thread"`` (the
conversation to report to), ``"scenario"`` (the scripted model's scenario,
set by the chat) and ``"approve_plan"`` (default true: a semi-automated task
shows its plan for approval before anything runs; false: "execute" runs it
at once). A fully automated request is planned and run by the engine.

A step task, created by the Manager, has ``{"mode": "step", "step": "<id>"}``;
its state lives in :class:`agents.models.AgentWork`.
"""

from __future__ import annotations

from typing import Any

from accounts.errors import InvalidInput
from agents.loop.employee import run_step
from agents.loop.manager import ai_task_execute, run_request, work_for_request
from agents.loop.runtime import Context, Outcome
from agents.models import AgentWork, WorkKind
from automation.executors import BaseExecutor, ExecutionContext, ExecutionResult

MAX_REQUEST = 20_000


class AIExecutor(BaseExecutor):
    """Runs a task with the AI workforce (see the module docstring)."""

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        mode = parameters.get("mode", "request")
        if mode not in ("request", "step"):
            raise InvalidInput("mode is request or step", field="parameters.mode")
        if mode == "step":
            if not isinstance(parameters.get("step"), str) or not parameters["step"]:
                raise InvalidInput("a step task names its plan step", field="parameters.step")
            return {"mode": "step", "step": parameters["step"]}
        request = parameters.get("request", "")
        if not isinstance(request, str) or len(request) > MAX_REQUEST:
            raise InvalidInput(f"request is a text of at most {MAX_REQUEST} characters", field="parameters.request")
        thread = parameters.get("thread")
        if thread is not None and (isinstance(thread, bool) or not isinstance(thread, int)):
            raise InvalidInput("thread is an id", field="parameters.thread")
        if "scenario" in parameters and not isinstance(parameters["scenario"], str):
            raise InvalidInput("scenario is a name", field="parameters.scenario")
        if "approve_plan" in parameters and not isinstance(parameters["approve_plan"], bool):
            raise InvalidInput("approve_plan is true or false", field="parameters.approve_plan")
        return {**parameters, "mode": "request"}

    def breaker_key(self, name: str, parameters: dict[str, Any]) -> str:
        return "ai"

    def execute(self, context: ExecutionContext) -> ExecutionResult:
        task = context.task
        if (task.parameters or {}).get("mode") == "step":
            work = AgentWork.objects.for_org(task.organization).select_related("task", "root").filter(
                task_id=task.pk).first()
            if work is None:
                return ExecutionResult.failed(f"step task {task.label} has no plan step", retryable=False)
            outcome = run_step(Context(work, run_id=context.run.pk))
        else:
            work = work_for_request(task)
            if work.kind != WorkKind.REQUEST:
                return ExecutionResult.failed(f"task {task.label} is not a request", retryable=False)
            outcome = run_request(Context(work, run_id=context.run.pk))
        return _result(outcome)

    def execute_strategy(self, *, task: Any, actor: Any) -> dict[str, Any]:
        """The task "execute" endpoint's answer for an AI task (see ``ai_task_execute``)."""
        return ai_task_execute(task=task, actor=actor)


def _result(outcome: Outcome) -> ExecutionResult:
    if outcome.status == "completed":
        return ExecutionResult.completed(outcome.output)
    if outcome.status == "parked":
        return ExecutionResult.parked(outcome.reason[:2000])
    return ExecutionResult.failed(outcome.reason[:2000] or "failed", retryable=outcome.retryable)


EXECUTOR = AIExecutor()
