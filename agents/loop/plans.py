"""Plans: the Manager's answer schema and the checks a plan must pass before anything runs.

A plan is refused (``invalid``) when it is malformed, names a tool that does
not exist, depends on an unknown step or contains a cycle; it is ``blocked``
when it needs a tool the requester may not use (or that is not configured in
the organization), or when the Manager itself says what access or human
action is missing. Problems name the step and say what is wrong, so the
conversation and the event log can show them as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from accounts.models import Membership, Organization, User
from agents import conf
from agents.models import Strategy
from automation.services.subtasks import find_step_cycle

STEP_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ROLES = ("employee", "human")

STEP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 64},
        "title": {"type": "string", "minLength": 1, "maxLength": 300},
        "depends_on": {"type": "array", "items": {"type": "string"}},
        "role": {"type": "string", "enum": list(ROLES)},
        "tools": {"type": "array", "items": {"type": "string"}},
        "success_criteria": {"type": "array", "items": {"type": "string"}},
        "estimate_minutes": {"type": "number", "minimum": 0},
        "needs_approval": {"type": "boolean"},
        "approver": {"type": "string"},
        "instructions": {"type": "string"},
    },
    "required": ["id", "title", "depends_on", "role", "tools", "success_criteria", "needs_approval"],
}

PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "strategy": {"type": "string", "enum": [s.value for s in Strategy]},
        "needs": {"type": "array", "items": {"type": "string"}},
        "question": {"type": ["string", "null"], "description": "Ask the requester first (then no steps)."},
        "steps": {"type": "array", "items": STEP_SCHEMA},
    },
    "required": ["summary", "strategy", "steps"],
}


@dataclass(frozen=True)
class Problem:
    """What is wrong with a plan, and where."""

    kind: str  # malformed, duplicate_step, unknown_dependency, cycle, unknown_tool, forbidden_tool, not_configured
    message: str
    step: str = ""

    @property
    def blocks(self) -> bool:
        """The plan is sound but needs access the requester lacks (a person can grant it)."""
        return self.kind in ("forbidden_tool", "not_configured", "tool_disabled")

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message, "step": self.step}


@dataclass
class PlanCheck:
    """The checked plan: normalized steps, the strategy, and the problems found."""

    summary: str
    strategy: str
    steps: list[dict[str, Any]]
    needs: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def invalid(self) -> bool:
        return any(not p.blocks for p in self.problems)

    @property
    def blocked(self) -> bool:
        return not self.invalid and (self.strategy == Strategy.BLOCKED or any(p.blocks for p in self.problems))

    @property
    def ok(self) -> bool:
        return not self.problems and self.strategy != Strategy.BLOCKED

    def describe(self) -> str:
        return "; ".join(p.message for p in self.problems) or "; ".join(self.needs)


def topological(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps ordered so that each comes after what it depends on (the plan must be acyclic)."""
    by_id = {s["id"]: s for s in steps}
    placed: set[str] = set()
    ordered: list[dict[str, Any]] = []

    def place(step_id: str) -> None:
        if step_id in placed:
            return
        placed.add(step_id)
        for dependency in by_id[step_id]["depends_on"]:
            place(dependency)
        ordered.append(by_id[step_id])

    for step in steps:
        place(step["id"])
    return ordered


def tool_access(organization: Organization, requester: User | None) -> dict[str, str]:
    """Every registered tool name → why the requester may not use it ("" when they may)."""
    from tools.models import IntegrationCredential, ToolSetting
    from tools.registry import registry
    from tools.services.invocation import tool_enabled, tool_permitted

    membership = (
        Membership.objects.for_org(organization).filter(user=requester).first() if requester is not None else None
    )
    settings = {s.tool_name: s for s in ToolSetting.objects.for_org(organization)}
    providers = set(IntegrationCredential.objects.for_org(organization).values_list("provider", flat=True))
    access: dict[str, str] = {}
    for tool in registry.all():
        setting = settings.get(tool.name)
        if membership is None:
            access[tool.name] = "forbidden_tool:the requester is not a member of the organization"
        elif not tool_enabled(tool, setting):
            access[tool.name] = f"tool_disabled:{tool.name} is turned off in this organization"
        elif tool.provider and tool.provider not in providers:
            access[tool.name] = (f"not_configured:{tool.name} needs a {tool.provider} connection "
                                 "(an admin adds the credential)")
        else:
            denied = tool_permitted(tool, setting, role=membership.role, scopes=membership.scopes)
            access[tool.name] = f"forbidden_tool:{denied}" if denied else ""
    return access


def _text_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(v).strip() for v in value if str(v).strip()]


def plan_check(data: Any, *, organization: Organization, requester: User | None) -> PlanCheck:
    """Check a plan (the Manager's answer or a person's edit) against the tool registry and the requester's access."""
    if not isinstance(data, dict):
        return PlanCheck(summary="", strategy=Strategy.DECOMPOSE, steps=[],
                         problems=[Problem("malformed", "the plan is not a JSON object")])
    summary = str(data.get("summary") or "").strip()[:2000]
    raw_steps = data.get("steps")
    needs = _text_list(data.get("needs"))
    problems: list[Problem] = []
    if not isinstance(raw_steps, list):
        raw_steps = []
        problems.append(Problem("malformed", "the plan has no list of steps"))
    strategy = str(data.get("strategy") or "")
    if strategy == Strategy.BLOCKED:
        if not needs:
            needs = ["the Manager could not plan this with the tools and access available"]
        return PlanCheck(summary=summary, strategy=Strategy.BLOCKED, steps=[], needs=needs, problems=problems)
    if not raw_steps and not problems:
        problems.append(Problem("malformed", "the plan has no steps"))
    if len(raw_steps) > conf.max_plan_steps():
        problems.append(Problem("malformed", f"the plan has {len(raw_steps)} steps; at most {conf.max_plan_steps()}"))
        raw_steps = raw_steps[: conf.max_plan_steps()]
    access = tool_access(organization, requester)
    steps: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_steps):
        if not isinstance(raw, dict):
            problems.append(Problem("malformed", f"step {index + 1} is not an object"))
            continue
        step_id = str(raw.get("id") or "").strip()
        if not STEP_ID.match(step_id):
            problems.append(Problem("malformed", f"step {index + 1} needs an id of lowercase letters, digits and _ "
                                                 f"(got {step_id!r})", step_id))
            continue
        if step_id in seen:
            problems.append(Problem("duplicate_step", f"the step id {step_id!r} is used twice", step_id))
            continue
        seen.add(step_id)
        role = raw.get("role") if raw.get("role") in ROLES else "employee"
        tools = [str(t) for t in raw.get("tools") or [] if isinstance(t, str)]
        if role == "employee":
            for name in tools:
                why = access.get(name)
                if why is None:
                    problems.append(Problem("unknown_tool", f"step {step_id!r} names a tool that does not exist: "
                                                            f"{name!r}", step_id))
                elif why:
                    kind, _, message = why.partition(":")
                    problems.append(Problem(kind, f"step {step_id!r}: {message}", step_id))
                    needs.append(message)
        try:
            estimate = max(0.0, float(raw.get("estimate_minutes") or 0))
        except (TypeError, ValueError):
            estimate = 0.0
        steps.append({
            "id": step_id,
            "title": str(raw.get("title") or step_id).strip()[:300],
            "depends_on": [str(d) for d in raw.get("depends_on") or [] if isinstance(d, str)],
            "role": role,
            "tools": list(dict.fromkeys(tools)) if role == "employee" else [],
            "success_criteria": _text_list(raw.get("success_criteria")),
            "estimate_minutes": estimate,
            "needs_approval": bool(raw.get("needs_approval", False)),
            "approver": str(raw.get("approver") or "")[:100],
            "instructions": str(raw.get("instructions") or "")[:4000],
        })
    ids = {s["id"] for s in steps}
    for step in steps:
        unknown = [d for d in step["depends_on"] if d not in ids]
        if unknown:
            problems.append(Problem("unknown_dependency", f"step {step['id']!r} depends on unknown step(s): "
                                                          f"{', '.join(unknown)}", step["id"]))
            step["depends_on"] = [d for d in step["depends_on"] if d in ids]
    cycle = find_step_cycle({s["id"]: s["depends_on"] for s in steps})
    if cycle:
        problems.append(Problem("cycle", f"the steps form a cycle: {' → '.join(cycle)}", cycle[0]))
    employee_steps = [s for s in steps if s["role"] == "employee"]
    strategy = Strategy.IMMEDIATE if len(steps) == 1 and len(employee_steps) == 1 else Strategy.DECOMPOSE
    if not cycle:
        steps = topological(steps)
    return PlanCheck(summary=summary, strategy=strategy, steps=steps, needs=list(dict.fromkeys(needs)),
                     problems=problems)


def step_estimate_minutes(steps: list[dict[str, Any]]) -> float:
    return sum(float(s.get("estimate_minutes") or 0) for s in steps)
