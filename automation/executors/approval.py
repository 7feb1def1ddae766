"""The ``approval`` executor: park the task until a person decides.

Parameters: ``title`` (what is to be approved; default the task's title),
``reason``, ``arguments`` (the exact arguments the decision binds; a change
voids it), ``cost_estimate`` and ``currency``, ``financial`` (the requester,
the task's creator, may not approve), ``required_scope`` (default
``approvals:decide``) and ``expires_in_hours`` (default 72).

First run: an ApprovalRequest (kind ``task``) is created and the task parks
(blocked). The decision handler registered below resumes the task on
approval (the executor runs again, checks the arguments and completes with
the decision) or fails it on rejection, expiry or voiding. A retried task
asks again.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from accounts.approvals import HandlerNotReady, register_approval_handler
from accounts.errors import InvalidInput
from accounts.models import ApprovalRequest, ApprovalStatus, Membership
from accounts.roles import Scope
from accounts.services.approvals import (
    ApprovalArgumentsChanged,
    approval_check_arguments,
    approval_request_create,
)
from automation.executors.base import BaseExecutor, ExecutionContext, ExecutionResult
from automation.executors.registry import register_executor
from automation.models import BlockedKind, Task, TaskStatus

APPROVAL_KIND = "task"
SUBJECT_TYPE = "automation.task"
DEFAULT_EXPIRY_HOURS = 72
MAX_EXPIRY_HOURS = 24 * 90


def _field(name: str) -> str:
    return f"parameters.{name}"


def latest_approval(task: Task) -> ApprovalRequest | None:
    """The newest approval request made for ``task``."""
    return (
        ApprovalRequest.objects.for_org(task.organization)
        .filter(kind=APPROVAL_KIND, subject_type=SUBJECT_TYPE, subject_id=str(task.pk))
        .order_by("-id")
        .first()
    )


class ApprovalExecutor(BaseExecutor):
    """Asks for a person's decision and waits for it (the task is blocked meanwhile)."""

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        checked = dict(parameters)
        for name in ("title", "reason", "currency"):
            if name in checked and not isinstance(checked[name], str):
                raise InvalidInput(f"{name} must be text", field=_field(name))
        if len(checked.get("title", "")) > 200:
            raise InvalidInput("title has at most 200 characters", field=_field("title"))
        arguments = checked.get("arguments", {})
        if not isinstance(arguments, dict):
            raise InvalidInput("arguments must be a JSON object", field=_field("arguments"))
        cost = checked.get("cost_estimate")
        if cost is not None:
            try:
                value = Decimal(str(cost))
            except InvalidOperation:
                raise InvalidInput("cost_estimate must be a number", field=_field("cost_estimate")) from None
            if not value.is_finite() or value < 0:
                raise InvalidInput("cost_estimate must be at least 0", field=_field("cost_estimate"))
            if not checked.get("currency"):
                raise InvalidInput("a cost estimate needs a currency", field=_field("currency"))
            checked["cost_estimate"] = str(value)
        if not isinstance(checked.get("financial", False), bool):
            raise InvalidInput("financial is true or false", field=_field("financial"))
        scope = checked.get("required_scope", Scope.APPROVALS_DECIDE)
        if scope not in Scope.all():
            raise InvalidInput(f"unknown scope {scope!r}", field=_field("required_scope"))
        hours = checked.get("expires_in_hours", DEFAULT_EXPIRY_HOURS)
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= MAX_EXPIRY_HOURS:
            raise InvalidInput(f"expires_in_hours must be a number from 0 to {MAX_EXPIRY_HOURS}",
                               field=_field("expires_in_hours"))
        return checked

    def execute(self, context: ExecutionContext) -> ExecutionResult:
        task = context.task
        parameters = context.parameters
        arguments = parameters.get("arguments", {})
        approval = latest_approval(task)
        if approval is not None and approval.status == ApprovalStatus.APPROVED:
            try:
                approval_check_arguments(approval=approval, arguments=arguments)
            except ApprovalArgumentsChanged as exc:
                return ExecutionResult.failed(f"approval #{approval.pk}: {exc.message}", retryable=False)
            context.log(f"approval #{approval.pk} approved by {_decider(approval)}")
            return ExecutionResult.completed(_outcome(approval))
        if approval is not None and approval.status == ApprovalStatus.PENDING:
            context.log(f"still waiting for approval #{approval.pk}")
            return ExecutionResult.parked(_waiting(approval), output={"approval": approval.pk})
        requester = task.created_by
        if requester is not None and not Membership.objects.for_org(task.organization).filter(user=requester).exists():
            requester = None
        approval = approval_request_create(
            organization=task.organization,
            kind=APPROVAL_KIND,
            subject_type=SUBJECT_TYPE,
            subject_id=str(task.pk),
            title=(parameters.get("title") or task.title)[:200],
            reason=parameters.get("reason", "") or task.description,
            requested_by=requester,
            requested_by_label=requester.email if requester else f"task #{task.pk}",
            arguments=arguments,
            cost_estimate=parameters.get("cost_estimate"),
            currency=parameters.get("currency", ""),
            financial=bool(parameters.get("financial", False)),
            required_scope=parameters.get("required_scope", Scope.APPROVALS_DECIDE),
            ttl=timedelta(hours=float(parameters.get("expires_in_hours", DEFAULT_EXPIRY_HOURS))),
        )
        context.log(f"asked for approval #{approval.pk}")
        return ExecutionResult.parked(_waiting(approval), output={"approval": approval.pk})


def _decider(approval: ApprovalRequest) -> str:
    return approval.decided_by.email if approval.decided_by else "system"


def _waiting(approval: ApprovalRequest) -> str:
    return f"waiting for approval #{approval.pk}: {approval.title}"


def _outcome(approval: ApprovalRequest) -> dict[str, Any]:
    return {
        "approval": approval.pk,
        "status": approval.status,
        "decided_by": _decider(approval),
        "reason": approval.decision_reason,
        "decided_at": approval.decided_at.isoformat() if approval.decided_at else None,
        "arguments_hash": approval.arguments_hash,
    }


def on_task_approval_decided(approval: ApprovalRequest) -> None:
    """Resume (approved) or fail (rejected, expired, voided) the task waiting on ``approval``.

    Idempotent: acts only if the task is still parked on this, its newest,
    approval. A task still on its way to being parked makes the handler run again later.
    """
    from automation.services.tasks import task_fail, task_resume

    if approval.subject_type != SUBJECT_TYPE or not approval.subject_id.isdigit():
        return
    task = Task.objects.for_org(approval.organization).filter(pk=int(approval.subject_id)).first()
    if task is None:
        return
    newest = latest_approval(task)
    if newest is None or newest.pk != approval.pk:
        return
    if task.status == TaskStatus.IN_PROGRESS:
        # Either about to park (the decision came first) or already resumed and running: look again later.
        raise HandlerNotReady(f"task {task.label} is running")
    if task.status != TaskStatus.BLOCKED or task.blocked_kind != BlockedKind.PARKED:
        return  # already resumed, cancelled or finished
    decider = approval.decided_by
    label = f"approval:{approval.pk}"
    if approval.status == ApprovalStatus.APPROVED:
        task_resume(task=task, actor=decider, actor_label=label, reason=f"approval #{approval.pk} approved")
    else:
        why = approval.decision_reason or approval.status
        task_fail(task=task, actor=decider if approval.status == ApprovalStatus.REJECTED else None, actor_label=label,
                  reason=f"approval #{approval.pk} {approval.status}: {why}")


register_executor("approval", ApprovalExecutor(), replace=True)
register_approval_handler(APPROVAL_KIND, on_task_approval_decided)
