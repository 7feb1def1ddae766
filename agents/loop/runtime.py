"""What the Manager, Employees and the Supervisor share: the work row, model calls, and failures said clearly.

An AI role's attempt ends in an :class:`Outcome`: ``completed`` (with the
output), ``parked`` (waiting for a person: an approval, an answer, more
budget) or ``failed`` (with a message a person can act on). Model failures
never leave a run hanging: an exhausted budget parks it behind an approval
to extend, a rate limit fails it with the time to wait, a model error or an
unusable answer fails the attempt (the engine retries it with backoff).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from django.db import transaction

from accounts.errors import ServiceError
from accounts.models import ApprovalRequest, ApprovalStatus, Organization, User
from agents.llm.errors import BudgetExhausted, LLMError, RateLimited
from agents.llm.gateway import complete
from agents.llm.types import LLMResult
from agents.models import AgentWork, MessageRole, Thread, Waiting
from agents.services.activity import activity_record

logger = logging.getLogger(__name__)

OutcomeStatus = Literal["completed", "parked", "failed"]


@dataclass
class Outcome:
    """How an AI role's attempt ended."""

    status: OutcomeStatus
    output: Any = None
    reason: str = ""
    retryable: bool = False

    @classmethod
    def completed(cls, output: Any) -> Outcome:
        return cls("completed", output=output)

    @classmethod
    def parked(cls, reason: str) -> Outcome:
        return cls("parked", reason=reason)

    @classmethod
    def failed(cls, reason: str, *, retryable: bool = False) -> Outcome:
        return cls("failed", reason=reason, retryable=retryable)


class Context:
    """One attempt of an AI role on a task: the work row, who it is for, where it reports."""

    def __init__(self, work: AgentWork, *, run_id: int | None = None) -> None:
        self.work = work
        self.task = work.task
        self.organization: Organization = work.task.organization
        self.requester: User | None = work.requester
        self.thread: Thread | None = work.thread
        self.run_id = run_id

    @property
    def root_id(self) -> int:
        return self.work.root_id

    def save(self, *fields: str) -> None:
        self.work.save(update_fields=[*fields, "updated_at"] if fields else None)

    def record(self, type: str, *, role: str, text: str = "", payload: dict[str, Any] | None = None,
               result: LLMResult | None = None, mirror: bool = True) -> None:
        activity_record(task=self.task, type=type, role=role, text=text, payload=payload, thread=self.thread,
                        result=result, mirror=mirror)

    def ask(self, *, role: str, messages: list[dict[str, Any]], purpose: str, step_key: str = "",
            attempt: int = 1, tools: list[dict[str, Any]] | None = None,
            response_schema: dict[str, Any] | None = None, task_type: str = "") -> LLMResult:
        """One model call for this work, through the gateway (rate limit, budget, routing, records)."""
        result = complete(
            organization=self.organization, user=self.requester, role=role, messages=messages, tools=tools,
            response_schema=response_schema, task_id=self.root_id, run_id=self.run_id, purpose=purpose,
            step_key=step_key, attempt=attempt, scenario=self.work.scenario, task_type=task_type,
        )
        if result.scripted and result.scenario and not self.work.scenario:
            self.work.scenario = result.scenario
            AgentWork.objects.for_org(self.organization).filter(root_id=self.root_id, scenario="").update(
                scenario=result.scenario)
        return result

    def model_failure(self, exc: ServiceError, *, role: str, doing: str) -> Outcome:
        """Turn a gateway refusal or failure into a clear outcome, an event and a message."""
        if isinstance(exc, BudgetExhausted):
            return self.pause_for_budget(exc, role=role)
        if isinstance(exc, RateLimited):
            text = f"I had to stop while {doing}: {exc.message}"
            self.record("rate_limited", role=MessageRole.SYSTEM, text=text,
                        payload={"retry_after": exc.retry_after, "limit": exc.limit})
            return Outcome.failed(exc.message, retryable=False)
        if isinstance(exc, LLMError):
            text = f"The AI model failed while {doing}: {exc.message}"
            self.record("model_error", role=MessageRole.SYSTEM, text=text,
                        payload={"code": exc.code, "call_id": exc.call_id, "attempts": exc.attempts[:5]})
            return Outcome.failed(text, retryable=True)
        text = f"I could not go on while {doing}: {exc.message}"
        self.record("error", role=MessageRole.SYSTEM, text=text, payload={"code": exc.code})
        return Outcome.failed(text, retryable=False)

    def pause_for_budget(self, exc: BudgetExhausted, *, role: str) -> Outcome:
        """Park the work behind an approval to extend the budget that ran out (never a silent stop)."""
        from agents.llm.budgets import llm_budget_extension_request

        requester = self.requester
        try:
            approval = llm_budget_extension_request(
                organization=self.organization, shortfall=exc.shortfall, requested_by=requester,
                requested_by_label=f"task #{self.root_id}", run_id=self.run_id,
                reason=f"{exc.message} Task {self.task.label} is paused until more budget is approved.",
            )
        except ServiceError as refused:  # e.g. the requester left the organization
            text = f"The AI budget is used up and no extension could be asked for: {refused.message}"
            self.record("budget_exhausted", role=MessageRole.SYSTEM, text=text, payload=exc.shortfall.as_dict())
            return Outcome.failed(text)
        with transaction.atomic():
            self.work.waiting_for = Waiting.BUDGET
            self.work.waiting = {**self.work.waiting, "approval": approval.pk}
            self.save("waiting_for", "waiting")
            self.record("budget_paused", role=MessageRole.SYSTEM,
                        text=f"{exc.message} The work is paused; approval #{approval.pk} asks to extend the budget "
                             f"by {approval.arguments.get('amount')} {exc.shortfall.currency}.",
                        payload={"approval": approval.pk, **exc.shortfall.as_dict()})
        return Outcome.parked(f"paused: the AI budget is used up; waiting for approval #{approval.pk} to extend it")

    def budget_gate(self) -> Outcome | None:
        """Before going on after a budget pause: None to continue, or the outcome while the decision is pending."""
        if self.work.waiting_for != Waiting.BUDGET:
            return None
        approval = approval_of(self.organization, self.work.waiting.get("approval"))
        if approval is not None and approval.status == ApprovalStatus.PENDING:
            return Outcome.parked(f"paused: waiting for approval #{approval.pk} to extend the AI budget")
        if approval is not None and approval.status != ApprovalStatus.APPROVED:
            text = f"The budget extension (approval #{approval.pk}) was {approval.status}: the work stops here."
            self.record("budget_refused", role=MessageRole.SYSTEM, text=text, payload={"approval": approval.pk})
            self.clear_waiting()
            return Outcome.failed(text)
        self.record("budget_extended", role=MessageRole.SYSTEM,
                    text="The AI budget was extended; the work goes on.",
                    payload={"approval": approval.pk if approval else None})
        self.clear_waiting()
        return None

    def clear_waiting(self) -> None:
        self.work.waiting_for = Waiting.NOTHING
        self.work.waiting = {}
        self.save("waiting_for", "waiting")


def approval_of(organization: Organization, approval_id: Any) -> ApprovalRequest | None:
    if not isinstance(approval_id, int):
        return None
    return ApprovalRequest.objects.for_org(organization).filter(pk=approval_id).first()


def requester_label(user: User | None) -> str:
    if user is None:
        return "the system"
    return f"{user.full_name} <{user.email}>" if user.full_name else user.email
