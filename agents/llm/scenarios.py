"""Scenario scripts of the offline scripted model: loading and deterministic matching.

A scenario (one YAML file in ``agents/scenarios/``) says which requests it
answers and what each role replies::

    name: hr_onboarding
    priority: 10
    match:
      all: [onboard]            # every keyword present (whole words, case-insensitive)
      any: [engineer, starting] # at least one, when given
    responses:
      - role: classifier
        content: {intent: complex_task, confidence: 0.96}
      - role: employee
        step: offer_letter      # the plan step (or purpose: plan, summary, intent, facts, answer)
        attempt: 1              # revision number (Supervisor's "revise" makes it 2)
        turn: 1                 # tool-loop iteration: 1 + assistant tool-call messages so far
        tool_calls:
          - {name: documents_generate, arguments: {template: offer_letter}}

Matching is deterministic. The scenario is the one named by the caller's hint,
else the first (highest ``priority``, then name) whose keywords appear in the
request text (the hint ``request``, else every user message). Within it, the
entries of the role are filtered by ``step`` (an exact match beats an entry
without a step) and by ``turn``, ``attempt`` and ``exchange`` (number of user
messages): an entry applies when each value it names is at most the current
one, and the most specific applies (step, then the highest turn, attempt,
exchange, then the most ``tools``). An entry naming ``tools: [a, b]`` applies
only when each of them is offered in the call (a ``- name:`` line of the tool
catalogue in a system message, as the Manager's prompt lists the tools the
requester may use): a plan can use an integration only where it is connected,
as a real model would. With no match the ``fallback`` scenario answers.

Strings may hold ``{{request}}``, ``{{memory}}`` (the text inside the first
``<memory>…</memory>`` block of the messages) and ``{{tool_result}}`` (the
last tool message).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
FALLBACK = "fallback"
ROLES = frozenset({"manager", "employee", "supervisor", "classifier", "extractor", "assistant", "system"})

_MEMORY_BLOCK = re.compile(r"<memory[^>]*>(.*?)</memory>", re.DOTALL | re.IGNORECASE)
_CATALOGUE_LINE = re.compile(r"^- ([a-z][a-z0-9_]*):", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\{\{\s*(request|memory|tool_result)\s*\}\}")


class ScenarioError(ValueError):
    """A scenario file is malformed."""


@dataclass(frozen=True)
class ScriptedToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Entry:
    role: str
    step: str | None = None
    attempt: int | None = None
    turn: int | None = None
    exchange: int | None = None
    content: Any = None
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    priority: int
    match_all: tuple[str, ...]
    match_any: tuple[str, ...]
    entries: tuple[Entry, ...]
    path: str = ""

    def matches(self, text: str) -> bool:
        if not self.match_all and not self.match_any:
            return False
        if not all(_has_keyword(text, word) for word in self.match_all):
            return False
        return not self.match_any or any(_has_keyword(text, word) for word in self.match_any)


@dataclass(frozen=True)
class ScriptRequest:
    """What the scripted model knows about a call."""

    role: str
    messages: list[dict[str, Any]]
    step: str = ""
    attempt: int = 1
    scenario: str = ""
    request: str = ""


@dataclass
class ScriptedReply:
    scenario: str
    content: str
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    matched: bool = True


def _has_keyword(text: str, word: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(word.lower()) + r"(?!\w)", text) is not None


def _positive_int(value: Any, what: str, path: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ScenarioError(f"{path}: {what} must be a positive integer")
    return value


def _parse_entry(raw: Any, path: str) -> Entry:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: every response must be a mapping")
    role = raw.get("role")
    if role not in ROLES:
        raise ScenarioError(f"{path}: role {role!r} is not one of {', '.join(sorted(ROLES))}")
    calls = []
    for call in raw.get("tool_calls") or []:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise ScenarioError(f"{path}: a tool call needs a name")
        arguments = call.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise ScenarioError(f"{path}: tool call {call['name']} needs arguments as a mapping")
        calls.append(ScriptedToolCall(name=call["name"], arguments=arguments))
    if raw.get("content") is None and not calls:
        raise ScenarioError(f"{path}: a {role} response needs content or tool_calls")
    step = raw.get("step")
    tools = raw.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, str) and t for t in tools):
        raise ScenarioError(f"{path}: tools must be a list of tool names")
    return Entry(
        role=role,
        step=str(step) if step is not None else None,
        attempt=_positive_int(raw.get("attempt"), "attempt", path),
        turn=_positive_int(raw.get("turn"), "turn", path),
        exchange=_positive_int(raw.get("exchange"), "exchange", path),
        content=raw.get("content"),
        tool_calls=tuple(calls),
        tools=tuple(tools),
    )


def parse_scenario(data: Any, path: str = "<memory>") -> Scenario:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ScenarioError(f"{path}: a scenario needs a name")
    match = data.get("match") or {}
    if not isinstance(match, dict):
        raise ScenarioError(f"{path}: match must be a mapping with 'all' and/or 'any'")
    entries = data.get("responses") or []
    if not isinstance(entries, list) or not entries:
        raise ScenarioError(f"{path}: a scenario needs responses")
    return Scenario(
        name=data["name"],
        title=str(data.get("title") or data["name"]),
        priority=int(data.get("priority") or 0),
        match_all=tuple(str(w).lower() for w in match.get("all") or []),
        match_any=tuple(str(w).lower() for w in match.get("any") or []),
        entries=tuple(_parse_entry(entry, path) for entry in entries),
        path=path,
    )


@functools.cache
def load_scenarios(directory: str = str(SCENARIO_DIR)) -> dict[str, Scenario]:
    """Every scenario in ``directory`` by name (cached; files are read once per process)."""
    scenarios: dict[str, Scenario] = {}
    for path in sorted(Path(directory).glob("*.y*ml")):
        with path.open(encoding="utf-8") as handle:
            scenario = parse_scenario(yaml.safe_load(handle), path.name)
        if scenario.name in scenarios:
            raise ScenarioError(f"{path.name}: scenario {scenario.name!r} is defined twice")
        scenarios[scenario.name] = scenario
    if FALLBACK not in scenarios:
        raise ScenarioError(f"{directory} has no '{FALLBACK}' scenario")
    return scenarios


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def request_text(request: ScriptRequest) -> str:
    if request.request:
        return request.request
    return "\n".join(_text(m) for m in request.messages if m.get("role") == "user")


def select_scenario(request: ScriptRequest, scenarios: dict[str, Scenario] | None = None) -> Scenario:
    scenarios = scenarios if scenarios is not None else load_scenarios()
    if request.scenario and request.scenario in scenarios:
        return scenarios[request.scenario]
    text = " ".join(request_text(request).lower().split())
    for scenario in sorted(scenarios.values(), key=lambda s: (-s.priority, s.name)):
        if scenario.name != FALLBACK and scenario.matches(text):
            return scenario
    return scenarios[FALLBACK]


def _counters(messages: list[dict[str, Any]]) -> tuple[int, int]:
    turn = 1 + sum(1 for m in messages if m.get("role") == "assistant" and m.get("tool_calls"))
    exchange = max(1, sum(1 for m in messages if m.get("role") == "user"))
    return turn, exchange


def offered_tools(messages: list[dict[str, Any]]) -> frozenset[str]:
    """The tool names a system message's catalogue lists (``- name: description`` lines)."""
    names: set[str] = set()
    for message in messages:
        if message.get("role") == "system":
            names.update(_CATALOGUE_LINE.findall(_text(message)))
    return frozenset(names)


def _pick(entries: list[Entry], *, step: str, attempt: int, turn: int, exchange: int,
          offered: frozenset[str] = frozenset()) -> Entry | None:
    def applies(entry: Entry) -> bool:
        if entry.step is not None and entry.step != step:
            return False
        if not offered.issuperset(entry.tools):
            return False
        return all(
            wanted is None or wanted <= current
            for wanted, current in ((entry.attempt, attempt), (entry.turn, turn), (entry.exchange, exchange))
        )

    candidates = [e for e in entries if applies(e)]
    if not candidates:
        return None
    return max(
        candidates,
        key=lambda e: (e.step is not None, e.turn or 0, e.attempt or 0, e.exchange or 0, len(e.tools)),
    )


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], value)
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


def _placeholders(request: ScriptRequest) -> dict[str, str]:
    memory = ""
    tool_result = ""
    for message in request.messages:
        text = _text(message)
        if not memory:
            found = _MEMORY_BLOCK.search(text)
            if found:
                memory = found.group(1).strip()
        if message.get("role") == "tool":
            tool_result = text
    user_messages = [_text(m) for m in request.messages if m.get("role") == "user"]
    return {
        "request": request.request or (user_messages[0] if user_messages else ""),
        "memory": memory or "(no business memory was given)",
        "tool_result": tool_result or "(no tool result)",
    }


def script_reply(request: ScriptRequest, scenarios: dict[str, Scenario] | None = None) -> ScriptedReply:
    """The scripted answer to ``request``; deterministic for the same request."""
    scenarios = scenarios if scenarios is not None else load_scenarios()
    scenario = select_scenario(request, scenarios)
    turn, exchange = _counters(request.messages)
    counters = {"step": request.step, "attempt": max(1, request.attempt), "turn": turn, "exchange": exchange,
                "offered": offered_tools(request.messages)}
    entry = _pick([e for e in scenario.entries if e.role == request.role], **counters)
    matched = entry is not None
    if entry is None:
        fallback = scenarios[FALLBACK]
        entry = _pick([e for e in fallback.entries if e.role == request.role], **counters)
    if entry is None:
        return ScriptedReply(scenario=scenario.name, content=f"(no script for the {request.role} role)",
                             matched=False)
    values = _placeholders(request)
    content = _fill(entry.content, values)
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        text = json.dumps(content, ensure_ascii=False)
    calls = [ScriptedToolCall(name=c.name, arguments=_fill(c.arguments, values)) for c in entry.tool_calls]
    return ScriptedReply(scenario=scenario.name, content=text, tool_calls=calls, matched=matched)
