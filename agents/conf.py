"""Tunables of conversations and of the Manager → Employee → Supervisor loop (Django settings, read at call time).

=================================  =======  ===============================================================
setting                            default  meaning
=================================  =======  ===============================================================
AGENTS_MAX_REVISIONS               3        Supervisor revisions of one step before it goes to a person
AGENTS_MAX_TOOL_ITERATIONS         6        model turns with tool calls in one revision of a step
AGENTS_MAX_REPLANS                 2        times the Manager re-plans a request whose steps stalled
AGENTS_MAX_PLAN_STEPS              20       steps in one plan
AGENTS_CHAT_APPROVE_PLANS          True     chat requests show their plan for approval before anything runs
AGENTS_MEMORY_CONTEXT_TOKENS       600      business memory put before a model (the context builder's budget)
AGENTS_EXTRACT_FACTS               True     learn facts from each user message in the background
AGENTS_STALLED_SWEEP_SECONDS       15       how often parked requests whose steps all ended are resumed
=================================  =======  ===============================================================
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


def _get(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def max_revisions() -> int:
    return max(1, int(_get("AGENTS_MAX_REVISIONS", 3)))


def max_tool_iterations() -> int:
    return max(1, int(_get("AGENTS_MAX_TOOL_ITERATIONS", 6)))


def max_replans() -> int:
    return max(0, int(_get("AGENTS_MAX_REPLANS", 2)))


def max_plan_steps() -> int:
    return max(1, int(_get("AGENTS_MAX_PLAN_STEPS", 20)))


def chat_approve_plans() -> bool:
    return bool(_get("AGENTS_CHAT_APPROVE_PLANS", True))


def memory_context_tokens() -> int:
    return max(0, int(_get("AGENTS_MEMORY_CONTEXT_TOKENS", 600)))


def extract_facts() -> bool:
    return bool(_get("AGENTS_EXTRACT_FACTS", True))


def stalled_sweep_seconds() -> float:
    return float(_get("AGENTS_STALLED_SWEEP_SECONDS", 15))
