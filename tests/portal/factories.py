"""Rows the portal pages show, made through the apps' services where one exists."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from accounts.models import ApprovalRequest, Organization, User
from accounts.services.approvals import approval_request_create
from agents.models import CallOutcome, LLMCall
from automation.models import Task
from automation.services.tasks import dependency_add, task_create


def make_task(organization: Organization, *, title: str = "Task", actor: User | None = None, **kwargs: Any) -> Task:
    kwargs.setdefault("source", "api")
    kwargs.setdefault("execution_type", "manual")
    return task_create(organization=organization, actor=actor, title=title, **kwargs)


def make_workflow(
    organization: Organization, edges: dict[str, list[str]], *, title: str = "Onboarding"
) -> dict[str, Task]:
    """A parent task with one manual subtask per key, each waiting for the keys listed for it."""
    parent = make_task(organization, title=title)
    steps = {key: make_task(organization, title=f"Step {key}", parent=parent, step_key=key) for key in edges}
    for key, deps in edges.items():
        for dep in deps:
            dependency_add(task=steps[key], depends_on=steps[dep], actor=None)
    return {"parent": parent, **steps}


def make_approval(organization: Organization, *, title: str = "Buy a laptop", requested_by: User | None = None,
                  **kwargs: Any) -> ApprovalRequest:
    return approval_request_create(organization=organization, kind="purchase", title=title,
                                   requested_by=requested_by, **kwargs)


def make_llm_call(organization: Organization, *, user: User | None = None, at: datetime | None = None,
                  **fields: Any) -> LLMCall:
    values: dict[str, Any] = {
        "role": "employee", "tier": "worker", "model": "openai/gpt-4o-mini", "deployment": "mini",
        "locality": "cloud", "tokens_in": 100, "tokens_out": 20, "cost": Decimal("0.25"), "latency_ms": 300,
        "outcome": CallOutcome.OK,
    }
    values.update(fields)
    call = LLMCall.objects.for_org(organization).create(organization=organization, user=user, **values)
    if at is not None:
        LLMCall.objects.for_org(organization).filter(pk=call.pk).update(created_at=at)
    return call


def hours_ago(hours: float) -> datetime:
    return timezone.now() - timedelta(hours=hours)


def make_payment(organization: Organization, *, amount: int, currency: str = "EUR", kind: str = "payment",
                 status: str = "succeeded") -> Any:
    """A row of the tools' transaction log (amount in minor units), as the payments tool writes it."""
    from tools.models import PaymentTransaction, ToolCall

    call = ToolCall.objects.for_org(organization).create(organization=organization, tool_name="payments_create")
    return PaymentTransaction.objects.for_org(organization).create(
        organization=organization, tool_call=call, kind=kind, amount=amount, currency=currency,
        purpose="Laptop", vendor="Shop", provider="stripe", provider_reference=f"pi_{call.pk}", status=status,
    )
