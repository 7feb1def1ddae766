"""What the gateway answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

SCRIPTED_LABEL = "Scripted model (offline): answers come from scenario scripts, not from a language model."


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for, in OpenAI's shape; ``arguments`` parsed from ``raw_arguments``."""

    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str

    def as_message_part(self) -> dict[str, Any]:
        """The entry of an assistant message's ``tool_calls`` list (to send the conversation back)."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.raw_arguments}}


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)


@dataclass
class LLMResult:
    """The answer of :func:`agents.llm.gateway.complete`.

    ``content`` is the text (empty when the model only called tools),
    ``tool_calls`` the calls it asked for, ``parsed`` the JSON object when a
    ``response_schema`` was given (validated against it). ``scripted`` is true
    when the offline scripted model answered; ``metadata`` then holds
    ``{"scripted": True, "label": ..., "scenario": ...}`` and whatever shows
    the answer must show the label. ``outcome`` is ``ok`` or ``fallback``
    (another deployment than the first choice answered); ``attempts`` lists
    the deployments that failed before. ``call_id`` is the LLMCall row.
    """

    content: str
    tool_calls: list[ToolCall]
    parsed: Any
    model: str
    deployment: str
    tier: str
    locality: str
    usage: Usage
    cost: Decimal
    currency: str
    latency_ms: int
    ttft_ms: int | None
    outcome: str
    scripted: bool
    scenario: str = ""
    finish_reason: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    call_id: int | None = None

    def assistant_message(self) -> dict[str, Any]:
        """This answer as an assistant message, to continue the conversation (tool loops)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            message["tool_calls"] = [call.as_message_part() for call in self.tool_calls]
        return message
