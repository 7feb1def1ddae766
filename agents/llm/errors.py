"""Errors of the gateway. Each carries a message meant for the person (or agent loop) that asked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from accounts.errors import InvalidInput, ServiceError


class LLMError(ServiceError):
    """The model could not give a usable answer."""

    status_code = 502
    code = "llm_error"

    def __init__(self, message: str, *, attempts: list[dict[str, Any]] | None = None, call_id: int | None = None,
                 code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.attempts = attempts or []
        self.call_id = call_id


class NoDeploymentAvailable(LLMError):
    """No deployment may serve the request (e.g. an organization pinned to on-prem with none configured)."""

    status_code = 503
    code = "llm_unavailable"


class AllDeploymentsFailed(LLMError):
    """Every deployment of the route failed (errors, timeouts or failed quality checks)."""

    code = "llm_failed"


class StructuredOutputInvalid(LLMError):
    """The answer did not match the JSON schema, even after one repair attempt."""

    code = "llm_output_invalid"

    def __init__(self, message: str, *, errors: list[str], content: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.errors = errors
        self.content = content


class InvalidLLMRequest(InvalidInput):
    """The caller's request to the gateway is malformed (unknown role, empty messages, bad schema)."""


class RateLimited(ServiceError):
    """The user made too many model calls in the last hour."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, limit: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit


@dataclass(frozen=True)
class BudgetShortfall:
    """What a budget extension request needs: which window, its period, the numbers."""

    organization_id: int
    window: str  # daily | monthly | task
    period_start: date | None
    task_id: int | None
    spent: Decimal
    limit: Decimal
    currency: str
    suggested_extension: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "period_start": self.period_start.isoformat() if self.period_start else None,
            "task_id": self.task_id,
            "spent": str(self.spent),
            "limit": str(self.limit),
            "currency": self.currency,
            "suggested_extension": str(self.suggested_extension),
        }


class BudgetExhausted(ServiceError):
    """A budget is used up: no call is made. Ask for an extension with ``llm_budget_extension_request``."""

    status_code = 402
    code = "budget_exhausted"

    def __init__(self, message: str, *, shortfall: BudgetShortfall) -> None:
        super().__init__(message)
        self.shortfall = shortfall
