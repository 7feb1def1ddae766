"""The ``tool`` executor: runs a registered tool of the tools app.

It is written against :class:`ToolBackend`, the small calling convention the
engine needs; :class:`ToolsAppBackend` adapts the tools app's invocation
pipeline (``tools.services.invocation.invoke_tool``) to it, and the executor
is registered only when that pipeline exists.

The tool acts for the task's creator (or its assigned user): the pipeline
checks that person's role, budget and approval policy. Each call carries an
idempotency key that does not change between attempts
(``task:<id>:tool:<name>``), so the pipeline replays a finished call instead
of repeating its side effect (a replayed failure fails the step for good:
asking again would only replay it). A call that needs approval parks the task; the
decision on that approval resumes it (approved: the executor runs again and
the pipeline finds the approval by the same key) or fails it. The breaker key
is ``tool:<name>``, so one failing integration opens its own circuit.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from accounts.errors import InvalidInput
from automation.executors.base import BaseExecutor, ExecutionContext, ExecutionResult
from automation.executors.registry import register_executor

if TYPE_CHECKING:
    from accounts.models import ApprovalRequest, Organization
    from automation.models import Task


@dataclass(frozen=True)
class ToolAnswer:
    """What a tool call came to, as the engine sees it."""

    status: Literal["succeeded", "failed", "needs_approval", "refused"]
    output: Any = None
    reason: str = ""
    retryable: bool = False


class ToolBackend(Protocol):
    """How the engine checks and runs tools."""

    def check(self, name: str, arguments: dict[str, Any]) -> str | None:
        """A message naming what is wrong with ``name``/``arguments``, or None."""

    def invoke(self, *, context: ExecutionContext, name: str, arguments: dict[str, Any],
               idempotency_key: str) -> ToolAnswer:
        """Run the tool for the task in ``context``."""

    def failed_knowingly(self, organization: Organization, idempotency_key: str) -> bool:
        """Whether the call stored under the key failed with a known outcome (so calling again is safe)."""


def tool_call_key(task: Task, name: str, backend: ToolBackend) -> str:
    """The idempotency key of ``task``'s call to ``name`` in this retry generation.

    Redelivery, a lost lease or an engine retry reuse the key and so replay
    the stored outcome (one email, one payment). A person's retry of the
    failed task moves to a new key, so the tool is called again, but only
    past calls whose failure is known: one whose outcome is unknown (the
    worker died during it, it timed out, it still runs) keeps its key, so it
    is never repeated blindly.
    """
    base = f"task:{task.pk}:tool:{name}"
    key = base
    for generation in range(1, task.retry_generation + 1):
        if not backend.failed_knowingly(task.organization, key):
            break
        key = f"{base}:retry:{generation}"
    return key


class ToolExecutor(BaseExecutor):
    """Parameters: ``{"tool": "<registered tool name>", "arguments": {...}}``."""

    def __init__(self, backend: ToolBackend) -> None:
        self.backend = backend

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        name = parameters.get("tool")
        if not isinstance(name, str) or not name:
            raise InvalidInput("name the tool to run", field="parameters.tool")
        arguments = parameters.get("arguments", {})
        if not isinstance(arguments, dict):
            raise InvalidInput("arguments must be an object", field="parameters.arguments")
        problem = self.backend.check(name, arguments)
        if problem:
            raise InvalidInput(problem, field="parameters.arguments" if "argument" in problem else "parameters.tool")
        return {"tool": name, "arguments": arguments}

    def breaker_key(self, name: str, parameters: dict[str, Any]) -> str:
        return f"tool:{parameters.get('tool', '')}"

    def execute(self, context: ExecutionContext) -> ExecutionResult:
        name = context.parameters["tool"]
        answer = self.backend.invoke(
            context=context, name=name, arguments=context.parameters.get("arguments", {}),
            idempotency_key=tool_call_key(context.task, name, self.backend),
        )
        context.log(f"tool {name}: {answer.status}" + (f" ({answer.reason})" if answer.reason else ""))
        if answer.status == "succeeded":
            return ExecutionResult.completed(answer.output)
        if answer.status == "needs_approval":
            return ExecutionResult.parked(answer.reason or f"tool {name} needs approval")
        return ExecutionResult.failed(answer.reason or f"tool {name} {answer.status}", retryable=answer.retryable)


class ToolsAppBackend:
    """The tools app's registry and invocation pipeline behind :class:`ToolBackend`."""

    RETRYABLE_CODES = frozenset({"in_progress"})

    def check(self, name: str, arguments: dict[str, Any]) -> str | None:
        """Check ``arguments`` against the tool's schema, except values that are still templates.

        A workflow's saved steps hold ``{{ input }}`` and ``{{ steps.… }}``
        placeholders where a date, an address or a path will be: such a value
        is checked when the workflow starts (inputs filled in) or, for a
        ``steps`` reference, by the tool pipeline when the step runs.
        """
        from tools.registry import get_tool
        from tools.services.invocation import schema_errors

        tool = get_tool(name)
        if tool is None:
            return f"there is no tool named {name!r}"
        errors = schema_errors(tool, arguments)
        if errors and _has_template(arguments):
            errors = _errors_outside_templates(tool.parameters, arguments)
        if errors:
            return "the arguments do not match the tool: " + "; ".join(
                f"{path}: {', '.join(messages)}" for path, messages in sorted(errors.items())
            )
        return None

    UNKNOWN_OUTCOME_CODES = frozenset({"interrupted", "timeout"})

    def failed_knowingly(self, organization: Organization, idempotency_key: str) -> bool:
        from tools.models import ToolCall
        from tools.types import Outcome

        call = (ToolCall.objects.for_org(organization).filter(claimed=True, idempotency_key=idempotency_key)
                .values("outcome", "reason_code").first())
        return (call is not None and call["outcome"] == Outcome.FAILED
                and call["reason_code"] not in self.UNKNOWN_OUTCOME_CODES)

    def invoke(self, *, context: ExecutionContext, name: str, arguments: dict[str, Any],
               idempotency_key: str) -> ToolAnswer:
        from accounts.models import Organization
        from tools.services.invocation import invoke_tool
        from tools.types import InvocationContext, Outcome

        task = context.task
        actor = task.assignee_user if task.assignee_user_id else task.created_by
        if actor is None:
            return ToolAnswer("refused", reason="a tool task acts for a person: it needs a creator or an assigned user")
        result = invoke_tool(
            organization=Organization.objects.get(pk=task.organization_id),
            actor=actor,
            tool_name=name,
            arguments=arguments,
            idempotency_key=idempotency_key,
            context=InvocationContext(source="task", group=f"task:{task.pk}", task_id=str(task.pk),
                                      step_id=task.step_key[:64]),
        )
        if result.ok:
            return ToolAnswer("succeeded", output=result.result)
        if result.outcome == Outcome.NEEDS_APPROVAL:
            return ToolAnswer("needs_approval", reason=result.reason)
        if result.outcome in (Outcome.FAILED, Outcome.TIMED_OUT) and result.replayed:
            # The call with this step's key already ended so; asking again replays the same answer forever.
            unknown = result.outcome == Outcome.TIMED_OUT or result.code in self.UNKNOWN_OUTCOME_CODES
            advice = ("its outcome is unknown, so it is never repeated: check with the provider first" if unknown
                      else "it is not repeated by itself: retry the task to call the tool again")
            return ToolAnswer("failed", retryable=False, reason=(
                f"{result.reason or result.outcome} (call #{result.tool_call.pk if result.tool_call else '?'} "
                f"of an earlier attempt; {advice})"))
        if result.outcome in (Outcome.FAILED, Outcome.TIMED_OUT, Outcome.RUNNING):
            return ToolAnswer("failed", reason=result.reason or str(result.outcome), retryable=True)
        return ToolAnswer("refused", reason=f"{result.code}: {result.reason}",
                          retryable=result.code in self.RETRYABLE_CODES)


_TEMPLATE = re.compile(r"\{\{\s*[A-Za-z_][A-Za-z0-9_.-]*\s*\}\}")


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_TEMPLATE.search(value))
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    return False


def _errors_outside_templates(schema: dict[str, Any], arguments: dict[str, Any]) -> dict[str, list[str]]:
    """Schema errors of ``arguments``, leaving out those about a text that holds a ``{{ placeholder }}``."""
    from jsonschema import Draft202012Validator

    errors: dict[str, list[str]] = {}
    for error in Draft202012Validator(schema).iter_errors(arguments):
        if isinstance(error.instance, str) and _TEMPLATE.search(error.instance):
            continue
        path = ".".join(str(p) for p in error.absolute_path) or "arguments"
        errors.setdefault(path, []).append(error.message[:300])
    return errors


def on_tool_approval_decided(approval: ApprovalRequest) -> None:
    """A tool-call approval was decided: resume (approved) or fail (otherwise) the task parked on it."""
    from accounts.approvals import HandlerNotReady
    from accounts.models import ApprovalStatus
    from automation.models import BlockedKind, Task, TaskStatus
    from automation.services.tasks import task_fail, task_resume
    from tools.models import ToolCall

    if approval.status == ApprovalStatus.PENDING:
        return
    task_ids = {
        int(pk) for pk in ToolCall.objects.for_org(approval.organization).filter(approval=approval)
        .values_list("task_id", flat=True) if str(pk).isdigit()
    }
    for task in Task.objects.for_org(approval.organization).filter(pk__in=task_ids, executor="tool"):
        if task.status == TaskStatus.IN_PROGRESS:
            raise HandlerNotReady(f"task {task.pk} has not parked yet")
        if task.status != TaskStatus.BLOCKED or task.blocked_kind != BlockedKind.PARKED:
            continue
        label = f"approval:{approval.pk}"
        if approval.status == ApprovalStatus.APPROVED:
            task_resume(task=task, actor=None, actor_label=label, reason=f"approval #{approval.pk} approved")
        else:
            task_fail(task=task, actor=None, actor_label=label,
                      reason=f"approval #{approval.pk} {approval.status}: {approval.decision_reason or 'no reason'}")


def register_if_available() -> bool:
    """Register ``tool`` when the tools app's invocation pipeline exists; return whether it was registered."""
    try:
        invocation = importlib.import_module("tools.services.invocation")
    except ImportError:
        return False
    if getattr(invocation, "invoke_tool", None) is None:
        return False
    from accounts.approvals import register_approval_handler

    register_executor("tool", ToolExecutor(ToolsAppBackend()), replace=True)
    register_approval_handler("tool_call", on_tool_approval_decided)
    return True
