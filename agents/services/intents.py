"""Intent parsing: the fast tier reads a message into one intent with its parameters (structured output).

Intents: ``simple_action`` (one tool call), ``complex_task`` (a plan for the
Manager), ``question`` (answered from business memory), ``clarification``
(the answer to what the assistant asked), ``conversation``, and
``memory_command`` with a ``command``: ``remember``, ``forget``, ``about``,
``show_my_data`` or ``clear_my_data``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accounts.models import Organization, User
from agents import prompts
from agents.llm.gateway import complete
from agents.llm.types import LLMResult

INTENTS = ("simple_action", "complex_task", "question", "clarification", "conversation", "memory_command")
MEMORY_COMMANDS = ("remember", "forget", "about", "show_my_data", "clear_my_data")

INTENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "intent": {"type": "string", "enum": list(INTENTS)},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "action": {"type": ["string", "null"]},
        "command": {"type": ["string", "null"]},
        "parameters": {"type": ["object", "null"]},
        "missing": {"type": ["array", "null"], "items": {"type": "string"}},
        "question": {"type": ["string", "null"]},
    },
    "required": ["intent", "confidence"],
}


@dataclass
class Intent:
    """A parsed message."""

    intent: str
    confidence: float
    action: str = ""
    command: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    question: str = ""
    result: LLMResult | None = None

    @property
    def label(self) -> str:
        """The evaluation label: the intent, or ``memory:<command>`` for a memory command."""
        if self.intent == "memory_command":
            return f"memory:{self.command or 'unknown'}"
        return self.intent

    @property
    def scenario(self) -> str:
        return self.result.scenario if self.result is not None and self.result.scripted else ""

    def as_dict(self) -> dict[str, Any]:
        return {"intent": self.intent, "confidence": self.confidence, "action": self.action,
                "command": self.command, "parameters": self.parameters, "missing": self.missing,
                "question": self.question}


def classifier_messages(*, text: str, context: list[dict[str, Any]] | None = None,
                        tool_names: list[str] | None = None) -> list[dict[str, Any]]:
    """The classifier's prompt: instructions, the recent exchange (if any), then the message."""
    system = prompts.fill(prompts.CLASSIFIER, tools=", ".join(tool_names or []) or "none")
    return [{"role": "system", "content": system}, *(context or []), {"role": "user", "content": text}]


def intent_parse(
    *,
    organization: Organization,
    user: User | None,
    text: str,
    context: list[dict[str, Any]] | None = None,
    tool_names: list[str] | None = None,
    scenario: str = "",
) -> Intent:
    """Parse ``text`` (after ``context``: earlier user and assistant turns) into an :class:`Intent`.

    Raises the gateway's errors (rate limit, budget, model failure) for the caller to report.
    """
    result = complete(
        organization=organization, user=user, role="classifier",
        messages=classifier_messages(text=text, context=context, tool_names=tool_names),
        response_schema=INTENT_SCHEMA, purpose="classify", scenario=scenario, temperature=0,
    )
    data = result.parsed or {}
    command = str(data.get("command") or "")
    intent = str(data["intent"])
    if intent == "memory_command" and command not in MEMORY_COMMANDS:
        command = ""
    return Intent(
        intent=intent,
        confidence=float(data.get("confidence") or 0),
        action=str(data.get("action") or ""),
        command=command,
        parameters=dict(data.get("parameters") or {}),
        missing=[str(m) for m in data.get("missing") or []],
        question=str(data.get("question") or ""),
        result=result,
    )
