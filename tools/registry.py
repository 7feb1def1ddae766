"""The tool registry: what a tool is, and the one place tools are looked up.

Built-in tools register in ``ToolsConfig.ready()``; apps above tools (automation
registers task and reminder tools) call :func:`register_tool` from their own
``ready()``. Nothing here imports a model, so registering is safe during app
loading.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from accounts.roles import Role, Scope
from tools.types import Money, SideEffect

if TYPE_CHECKING:
    from tools.context import ToolContext

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,63}$")  # also a valid function name for LLM tool calling

Handler = Callable[["ToolContext", dict[str, Any]], dict[str, Any]]
Compensation = Callable[["ToolContext", dict[str, Any], dict[str, Any]], dict[str, Any]]
Authorizer = Callable[["ToolContext", dict[str, Any]], None]


@dataclass(frozen=True)
class ApprovalPolicy:
    """When an invocation waits for a person's decision.

    Any condition that holds asks for approval:
    ``always``; the actor's role below ``below_role``; the amount above
    ``amount_over`` (minor units); a recipient outside the organization's
    domains when ``outside_domains``. Financial tools always ask, whatever the
    policy says. An organization may override the policy per tool (see
    ``ToolSetting.approval``), never for financial tools.
    """

    always: bool = False
    below_role: Role | None = None
    amount_over: int | None = None
    outside_domains: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "always": self.always,
            "below_role": Role(self.below_role).slug if self.below_role is not None else None,
            "amount_over": self.amount_over,
            "outside_domains": self.outside_domains,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base: ApprovalPolicy | None = None) -> ApprovalPolicy:
        """A policy from an organization's override (keys it omits come from ``base``)."""
        base = base or cls()
        below = data.get("below_role", base.as_dict()["below_role"])
        return cls(
            always=bool(data.get("always", base.always)),
            below_role=Role.from_name(below) if below else None,
            amount_over=data.get("amount_over", base.amount_over),
            outside_domains=bool(data.get("outside_domains", base.outside_domains)),
        )


@dataclass(frozen=True)
class Tool:
    """A typed, permissioned action.

    ``handler(ctx, arguments)`` does the work and returns a JSON-able result.
    ``compensation(ctx, arguments, result)`` undoes it when a group of calls is
    rolled back. ``amount(arguments)`` names the money a call moves (budgets and
    approval by amount); ``recipients(arguments)`` names the addresses it
    reaches (approval by domain). ``authorize(ctx, arguments)`` checks access
    to the objects the arguments name, raising ``accounts.errors.Forbidden``.
    ``secret_arguments`` are argument names redacted from every record.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    handler: Handler
    scope: str = Scope.TOOLS_USE
    side_effect: SideEffect = SideEffect.READ
    cost_estimate: Decimal | Callable[[dict[str, Any]], Decimal] = Decimal("0")
    approval: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    timeout: float = 30.0
    compensation: Compensation | None = None
    amount: Callable[[dict[str, Any]], Money | None] | None = None
    recipients: Callable[[dict[str, Any]], Iterable[str]] | None = None
    authorize: Authorizer | None = None
    secret_arguments: frozenset[str] = frozenset()
    enabled_by_default: bool = True
    provider: str = ""
    title: str = ""
    config_schema: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ImproperlyConfigured(f"tool name {self.name!r} must match {NAME_PATTERN.pattern}")
        if self.scope not in Scope.all():
            raise ImproperlyConfigured(f"tool {self.name}: unknown scope {self.scope!r}")
        if self.parameters.get("type") != "object":
            raise ImproperlyConfigured(f"tool {self.name}: parameters must be a JSON schema of type object")
        try:
            Draft202012Validator.check_schema(self.parameters)
        except SchemaError as exc:
            raise ImproperlyConfigured(f"tool {self.name}: invalid parameter schema: {exc.message}") from exc
        if self.config_schema is not None:
            try:
                Draft202012Validator.check_schema(self.config_schema)
            except SchemaError as exc:
                raise ImproperlyConfigured(f"tool {self.name}: invalid config schema: {exc.message}") from exc
        if self.timeout <= 0:
            raise ImproperlyConfigured(f"tool {self.name}: the timeout must be positive")
        if self.side_effect == SideEffect.FINANCIAL and self.amount is None:
            raise ImproperlyConfigured(f"tool {self.name}: a financial tool must say the amount it moves")

    @property
    def financial(self) -> bool:
        return self.side_effect == SideEffect.FINANCIAL

    def estimate_cost(self, arguments: dict[str, Any]) -> Decimal:
        value = self.cost_estimate(arguments) if callable(self.cost_estimate) else self.cost_estimate
        return Decimal(value)

    def spec(self) -> dict[str, Any]:
        """The tool as a model sees it (OpenAI/LiteLLM function-calling format)."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class ToolRegistry:
    """Tools by name. Registration is idempotent for the same object (``ready()`` may run twice)."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}
        self._lock = threading.Lock()

    def register(self, tool: Tool, *, replace: bool = False) -> Tool:
        with self._lock:
            existing = self._tools.get(tool.name)
            if existing is not None and existing is not tool and not replace:
                if existing == tool:
                    return existing
                raise ImproperlyConfigured(f"a tool named {tool.name!r} is already registered")
            self._tools[tool.name] = tool
        return tool

    def unregister(self, name: str) -> None:
        with self._lock:
            self._tools.pop(name, None)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def all(self) -> list[Tool]:
        return sorted(self._tools.values(), key=lambda t: t.name)

    def names(self) -> list[str]:
        return sorted(self._tools)


registry = ToolRegistry()


def register_tool(tool: Tool, *, replace: bool = False) -> Tool:
    """Add ``tool`` to the registry (call from an ``AppConfig.ready()``)."""
    return registry.register(tool, replace=replace)


def get_tool(name: str) -> Tool | None:
    return registry.get(name)
