"""Factories of the agents app's rows."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from accounts.models import Organization, User
from agents.models import CallOutcome, LLMCall


def make_llm_call(organization: Organization, *, user: User | None = None, at: datetime | None = None,
                  **fields: Any) -> LLMCall:
    """A recorded gateway call (an answered worker call on a cloud model unless told otherwise)."""
    values: dict[str, Any] = {
        "role": "employee", "tier": "worker", "model": "openai/gpt-4o-mini", "deployment": "mini",
        "locality": "cloud", "tokens_in": 100, "tokens_out": 20, "cost": Decimal("0.001"), "latency_ms": 300,
        "outcome": CallOutcome.OK,
    }
    values.update(fields)
    call = LLMCall.objects.for_org(organization).create(organization=organization, user=user, **values)
    if at is not None:
        LLMCall.objects.for_org(organization).filter(pk=call.pk).update(created_at=at)
        call.refresh_from_db()
    return call
