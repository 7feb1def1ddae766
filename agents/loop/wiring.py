"""How decisions and finished steps wake the AI workforce up (registered in ``AgentsConfig.ready()``).

* Approval decision handlers (run after the decision commits, and again by the
  approvals sweep until they succeed): ``plan`` (a plan approved, rejected or
  expired), ``llm_budget`` (an extension decided: the paused work resumes),
  ``tool_call`` (an AI step's or a chat action's tool call decided). A task
  still running when the decision lands raises ``HandlerNotReady``: the sweep
  calls the handler again once it has parked. The ``task`` kind (a step's
  result approved or an escalation decided) is automation's own handler.
* A TaskEvent listener: when a step of an AI request ends, or the request
  parks while its steps are already done, the request is resumed (in the same
  transaction) so the Manager reviews the results. A periodic sweep does the
  same for any request left parked with every step ended.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from accounts.approvals import HandlerNotReady
from accounts.models import ApprovalRequest, ApprovalStatus
from agents.models import AgentWork, Plan, PlanStatus, Waiting, WorkKind
from automation.models import BlockedKind, Task, TaskEvent, TaskStatus

logger = logging.getLogger(__name__)

S = TaskStatus
ACTIVE = (S.PENDING, S.QUEUED, S.IN_PROGRESS, S.PAUSED, S.BLOCKED)


def _resume(task: Task, *, label: str, reason: str) -> bool:
    """Queue ``task`` again if it is parked; refuse (for a later retry) while it runs. True if resumed."""
    from automation.services.tasks import task_resume

    if task.status == S.IN_PROGRESS:
        raise HandlerNotReady(f"task {task.label} is running")
    if task.status == S.BLOCKED and task.blocked_kind == BlockedKind.PARKED:
        task_resume(task=task, actor=None, actor_label=label, reason=reason)
        return True
    return False  # queued (its executor will see the decision), or finished


def on_plan_decided(approval: ApprovalRequest) -> None:
    """A plan's approval was decided: run it, or fail the request naming why."""
    from agents.loop.manager import mark_plan_approved
    from agents.loop.runtime import Context
    from automation.services.tasks import task_execute, task_fail

    if not approval.subject_id.isdigit():
        return
    organization = approval.organization
    plan = Plan.objects.for_org(organization).filter(pk=int(approval.subject_id)).select_related("task").first()
    if plan is None or plan.approval_id != approval.pk or plan.status != PlanStatus.AWAITING_APPROVAL:
        return
    task = Task.objects.for_org(organization).get(pk=plan.task_id)
    if task.status == S.IN_PROGRESS:
        raise HandlerNotReady(f"task {task.label} is running")
    work = AgentWork.objects.for_org(organization).select_related("task", "root").filter(task=task).first()
    if work is None:
        return
    label = f"approval:{approval.pk}"
    if approval.status == ApprovalStatus.APPROVED:
        mark_plan_approved(Context(work), plan, approval)
        if not _resume(task, label=label, reason=f"plan v{plan.version} approved") and task.status == S.PENDING:
            task_execute(task=task, actor=approval.decided_by, actor_label=label)
        return
    if approval.status == ApprovalStatus.VOIDED:
        return  # replaced by an edited version
    Plan.objects.for_org(organization).filter(pk=plan.pk).update(status=PlanStatus.REJECTED)
    why = approval.decision_reason or approval.status
    Context(work).record("plan_rejected", role="system",
                         text=f"Plan v{plan.version} was {approval.status}: {why}. Nothing was done.",
                         payload={"approval": approval.pk, "plan": plan.pk})
    if task.status == S.BLOCKED and task.blocked_kind == BlockedKind.PARKED:
        task_fail(task=task, actor=approval.decided_by if approval.status == ApprovalStatus.REJECTED else None,
                  actor_label=label, reason=f"plan v{plan.version} {approval.status}: {why}")


def on_budget_decided(approval: ApprovalRequest) -> None:
    """A budget extension was decided: resume what paused for it (it reads the decision itself)."""
    if approval.status == ApprovalStatus.PENDING:
        return
    works = AgentWork.objects.for_org(approval.organization).filter(
        waiting_for=Waiting.BUDGET, waiting__approval=approval.pk).select_related("task")
    for work in works:
        _resume(work.task, label=f"approval:{approval.pk}", reason=f"budget approval #{approval.pk} {approval.status}")


def on_tool_call_decided(approval: ApprovalRequest) -> None:
    """A tool call an AI step or a chat action waited on was decided."""
    from tools.models import ToolCall

    if approval.status == ApprovalStatus.PENDING:
        return
    organization = approval.organization
    calls = list(ToolCall.objects.for_org(organization).filter(approval=approval).order_by("id"))
    for call in calls:
        if call.source == "agent" and str(call.task_id).isdigit():
            work = AgentWork.objects.for_org(organization).filter(task_id=int(call.task_id)).select_related(
                "task").first()
            if work is not None and work.waiting_for == Waiting.TOOL_APPROVAL \
                    and work.waiting.get("approval") == approval.pk:
                _resume(work.task, label=f"approval:{approval.pk}",
                        reason=f"approval #{approval.pk} of {call.tool_name} {approval.status}")
        elif call.source == "chat":
            _finish_chat_action(approval, call)


def _finish_chat_action(approval: ApprovalRequest, call: Any) -> None:
    """Run (approved) or drop (otherwise) the chat action that waited, and say so in its thread."""
    from agents.models import MessageRole, Thread
    from agents.services.activity import message_add
    from agents.services.chat import action_report
    from tools.services.invocation import invoke_tool
    from tools.types import InvocationContext

    organization = approval.organization
    metadata = call.metadata or {}
    thread = Thread.objects.for_org(organization).filter(pk=metadata.get("thread")).first()
    if thread is None or approval.requested_by is None:
        return
    if approval.status == ApprovalStatus.APPROVED:
        binding = approval.arguments or {}
        result = invoke_tool(organization=organization, actor=approval.requested_by, tool_name=call.tool_name,
                             arguments=binding.get("arguments", {}), idempotency_key=call.idempotency_key,
                             context=InvocationContext(source="chat", metadata=metadata))
        if result.replayed and result.ok:
            return  # already reported
        text = action_report(call.tool_name, result)
    else:
        text = f"{call.tool_name} did not run: approval #{approval.pk} was {approval.status}" + (
            f" ({approval.decision_reason})." if approval.decision_reason else ".")
    message_add(thread=thread, role=MessageRole.TOOL, content=text,
                metadata={"approval": approval.pk, "tool_call": call.pk, "reply_to": metadata.get("message")})


# --- finished steps wake their request --------------------------------------------------------


def _wake_request(root: Task, *, reason: str) -> None:
    """Resume a parked AI request whose steps have all ended (call with the root row locked)."""
    from automation.services.tasks import task_resume

    if root.executor != "ai" or root.status != S.BLOCKED or root.blocked_kind != BlockedKind.PARKED:
        return
    work = AgentWork.objects.for_org(root.organization).filter(task_id=root.pk, kind=WorkKind.REQUEST).first()
    if work is None or work.waiting_for != Waiting.STEPS:
        return
    if Task.objects.for_org(root.organization).filter(parent_id=root.pk, status__in=ACTIVE).exists():
        return
    task_resume(task=root, actor=None, actor_label="agent:manager", reason=reason)


DECIDED_WAITS = (Waiting.PLAN_APPROVAL, Waiting.TOOL_APPROVAL, Waiting.OUTPUT_APPROVAL, Waiting.BUDGET)


def _wake_answered(task: Task) -> None:
    """A task that parks for an answer or a decision that came in while it was still running goes on at once.

    (The decision's handler found the task running and left it to the approvals sweep; this closes that gap.)
    """
    from automation.services.tasks import task_resume

    work = AgentWork.objects.for_org(task.organization).filter(task_id=task.pk).first()
    if work is None:
        return
    if work.waiting_for == Waiting.CLARIFICATION and work.waiting.get("answer"):
        task_resume(task=task, actor=None, actor_label="agent", reason="the requester had already answered")
    elif work.waiting_for in DECIDED_WAITS and isinstance(work.waiting.get("approval"), int):
        decided = ApprovalRequest.objects.for_org(task.organization).filter(pk=work.waiting["approval"]).exclude(
            status=ApprovalStatus.PENDING).exists()
        if decided:
            task_resume(task=task, actor=None, actor_label="agent", reason="the decision came while it was running")


def on_task_event(event: TaskEvent) -> None:
    """Event listener (inside the change's transaction): wake requests and steps that can go on."""
    if event.type == "subtask_finished":
        task = event.task
        if task.executor != "ai":
            return
        with transaction.atomic():
            _wake_request(task, reason="its steps have ended")
    elif event.type == "status_changed" and (event.payload or {}).get("to") == S.BLOCKED:
        task = event.task
        if task.executor != "ai" or task.blocked_kind != BlockedKind.PARKED:
            return
        with transaction.atomic():
            _wake_request(task, reason="its steps had already ended")
            _wake_answered(task)


def requests_resume_stalled(*, limit: int = 200) -> int:
    """System job: resume parked AI requests whose steps have all ended (a missed wake-up). Returns how many."""
    waiting = (AgentWork.objects.dangerously_unscoped()
               .filter(kind=WorkKind.REQUEST, waiting_for=Waiting.STEPS, task__status=S.BLOCKED,
                       task__blocked_kind=BlockedKind.PARKED)
               .values_list("task_id", flat=True)[:limit])
    resumed = 0
    for task_id in list(waiting):
        with transaction.atomic():
            root = Task.objects.dangerously_unscoped().select_for_update().filter(pk=task_id).first()
            if root is None:
                continue
            before = root.status
            _wake_request(root, reason="its steps have ended (sweep)")
            resumed += int(Task.objects.dangerously_unscoped().filter(pk=task_id).exclude(status=before).exists())
    return resumed


def register() -> None:
    from accounts.approvals import register_approval_handler
    from agents.llm.budgets import APPROVAL_KIND as BUDGET_KIND
    from agents.loop.manager import PLAN_APPROVAL_KIND
    from automation.services.events import register_event_listener
    from tools.services.invocation import APPROVAL_KIND as TOOL_CALL_KIND

    register_approval_handler(PLAN_APPROVAL_KIND, on_plan_decided)
    register_approval_handler(BUDGET_KIND, on_budget_decided)
    register_approval_handler(TOOL_CALL_KIND, on_tool_call_decided)
    register_event_listener(on_task_event)
