"""The ``tool`` executor: runs a registered tool of the tools app.

It is written against :class:`ToolInvoker`, the small calling convention the
engine needs, and registered (in ``AppConfig.ready``) only once the tools app
provides ``tools.services.invoke_tool``. Each call carries an idempotency key
that does not change between attempts (``task:<id>:tool:<name>``), so a tool
with an outside effect can refuse to repeat it; the breaker key is
``tool:<name>``, so one failing integration opens its own circuit.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from accounts.errors import InvalidInput
from automation.executors.base import BaseExecutor, ExecutionContext, ExecutionResult
from automation.executors.registry import register_executor


class ToolInvoker(Protocol):
    """``invoke_tool(...)`` as the engine calls it; returns a dict with ``ok`` and ``output`` or ``error``.

    Optional keys in the answer: ``retryable`` (default True), ``cost``, ``log``.
    """

    def __call__(
        self, *, organization_id: int, name: str, arguments: dict[str, Any], idempotency_key: str,
        actor_label: str,
    ) -> dict[str, Any]: ...


class ToolExecutor(BaseExecutor):
    """Parameters: ``{"tool": "<registered tool name>", "arguments": {...}}``."""

    def __init__(self, invoke: ToolInvoker) -> None:
        self.invoke = invoke

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        name = parameters.get("tool")
        if not isinstance(name, str) or not name:
            raise InvalidInput("name the tool to run", field="parameters.tool")
        arguments = parameters.get("arguments", {})
        if not isinstance(arguments, dict):
            raise InvalidInput("arguments must be an object", field="parameters.arguments")
        return {"tool": name, "arguments": arguments}

    def breaker_key(self, name: str, parameters: dict[str, Any]) -> str:
        return f"tool:{parameters.get('tool', '')}"

    def execute(self, context: ExecutionContext) -> ExecutionResult:
        name = context.parameters["tool"]
        answer = self.invoke(
            organization_id=context.organization_id,
            name=name,
            arguments=context.parameters.get("arguments", {}),
            idempotency_key=f"task:{context.task.pk}:tool:{name}",
            actor_label=f"task:{context.task.pk}",
        )
        log = str(answer.get("log", ""))
        cost = answer.get("cost", 0) or 0
        if answer.get("ok"):
            return ExecutionResult.completed(answer.get("output"), log=log, cost=cost)
        return ExecutionResult.failed(str(answer.get("error") or f"tool {name!r} failed"), log=log, cost=cost,
                                      retryable=bool(answer.get("retryable", True)))


def register_if_available() -> bool:
    """Register ``tool`` when ``tools.services.invoke_tool`` exists; return whether it was registered."""
    try:
        services = importlib.import_module("tools.services")
    except ImportError:
        return False
    invoke = getattr(services, "invoke_tool", None)
    if invoke is None:
        return False
    register_executor("tool", ToolExecutor(invoke), replace=True)
    return True
