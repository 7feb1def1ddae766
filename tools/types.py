"""Plain value types shared by the registry, the models and the services (no model imports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import models


class SideEffect(models.TextChoices):
    """What a tool does to the world, from harmless to money moving."""

    READ = "read", "Read"
    WRITE = "write", "Write (inside the organization)"
    EXTERNAL = "external", "External (leaves the organization)"
    FINANCIAL = "financial", "Financial (moves money)"


class Outcome(models.TextChoices):
    """How an invocation ended."""

    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    TIMED_OUT = "timed_out", "Timed out"
    REFUSED = "refused", "Refused"
    NEEDS_APPROVAL = "needs_approval", "Needs approval"
    REJECTED = "rejected", "Approval rejected"


class CompensationStatus(models.TextChoices):
    NONE = "", "Not compensated"
    COMPENSATED = "compensated", "Compensated"
    FAILED = "failed", "Compensation failed"
    NOT_COMPENSABLE = "not_compensable", "Has no compensation"


# ISO 4217 currencies without minor units (Stripe's list of zero-decimal currencies).
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)


@dataclass(frozen=True)
class Money:
    """An amount in minor units (cents) of a three-letter currency."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "currency", self.currency.upper())

    def major(self) -> Decimal:
        """The amount in major units (dollars), for people to read."""
        exponent = 0 if self.currency in ZERO_DECIMAL_CURRENCIES else 2
        return Decimal(self.amount).scaleb(-exponent)

    def __str__(self) -> str:
        return f"{self.major()} {self.currency}"


@dataclass(frozen=True)
class InvocationContext:
    """Where an invocation comes from.

    ``group`` names a unit of work whose successful calls are compensated
    together on rollback (a task run, a workflow). ``scopes`` narrows the
    actor's role scopes (an API key's). ``metadata`` is stored on the call.
    """

    source: str = "api"
    group: str = ""
    task_id: str = ""
    step_id: str = ""
    scopes: frozenset[str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
