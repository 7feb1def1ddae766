"""The context builder: the most relevant memory that fits a token budget, and a summary of the rest.

No model: the summary is extractive (what else is on record, grouped by
subject and category, with the first words of the best remaining items).
Token counts are estimated at four characters per token, rounded up.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from accounts.models import Organization
from memory import retrieval
from memory.services.facts import facts_mark_used

CHARS_PER_TOKEN = 4
SUMMARY_SHARE = 0.15


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


@dataclass
class Context:
    text: str
    tokens: int
    included: list[retrieval.Hit] = field(default_factory=list)
    omitted: list[retrieval.Hit] = field(default_factory=list)
    summary: str = ""


def render_hit(hit: retrieval.Hit) -> str:
    """One line per result: the fact (category, validity) or the message (speaker, date) with its facts."""
    if hit.fact is not None:
        fact = hit.fact
        when = ""
        if fact.valid_from or fact.valid_to:
            start = f"{fact.valid_from:%Y-%m-%d}" if fact.valid_from else "…"
            end = f"{fact.valid_to:%Y-%m-%d}" if fact.valid_to else "now"
            when = f" ({start} to {end})"
        return f"- [{fact.category}] {fact.text}{when}"
    message = hit.message
    assert message is not None
    date = f" on {message.occurred_at:%Y-%m-%d}" if message.occurred_at else ""
    speaker = f"{message.speaker}{date}: " if message.speaker else (f"{date.strip()}: " if date else "")
    line = f"- {speaker}{message.text}"
    for fact in hit.related_facts:
        line += f"\n  - [{fact.category}] {fact.text}"
    return line


def summarize(hits: list[retrieval.Hit], *, budget_tokens: int) -> str:
    """An extractive summary of results that did not fit: counts by subject and category, best first words."""
    if not hits:
        return ""
    subjects = Counter(h.fact.subject.name for h in hits if h.fact is not None and h.fact.subject_id)
    categories = Counter(h.fact.category for h in hits if h.fact is not None)
    messages = sum(1 for h in hits if h.kind == "message")
    parts = [f"{len(hits)} more related items on record"]
    if subjects:
        parts.append("about " + ", ".join(f"{name} ({n})" for name, n in subjects.most_common(5)))
    if categories:
        parts.append("in " + ", ".join(f"{c} ({n})" for c, n in categories.most_common()))
    if messages:
        parts.append(f"{messages} from conversations")
    summary = "Also: " + "; ".join(parts) + "."
    for hit in hits:
        snippet = " ".join(hit.text.split()[:12])
        candidate = f"{summary} {snippet}…" if summary.endswith(".") else f"{summary}; {snippet}…"
        if estimate_tokens(candidate) > budget_tokens:
            break
        summary = candidate
    while estimate_tokens(summary) > budget_tokens and " " in summary:
        summary = summary.rsplit(" ", 1)[0] + "…"
    return summary if estimate_tokens(summary) <= budget_tokens else ""


def build_context(
    *,
    organization: Organization,
    query: str,
    token_budget: int = 800,
    at: datetime | None = None,
    categories: list[str] | None = None,
    candidates: int = 40,
    record_use: bool = True,
) -> Context:
    """Fit the most relevant facts and messages for ``query`` into ``token_budget`` tokens, best first."""
    if token_budget <= 0:
        return Context(text="", tokens=0)
    hits = retrieval.search(organization=organization, query=query, at=at, categories=categories, limit=candidates)
    body_budget = token_budget - max(1, int(token_budget * SUMMARY_SHARE))
    included: list[retrieval.Hit] = []
    lines: list[str] = []
    used = 0
    omitted: list[retrieval.Hit] = []
    for hit in hits:
        line = render_hit(hit)
        cost = estimate_tokens(line + "\n")
        if used + cost <= body_budget:
            lines.append(line)
            included.append(hit)
            used += cost
        else:
            omitted.append(hit)
    summary = summarize(omitted, budget_tokens=token_budget - used - 1)
    text = "\n".join(lines + ([summary] if summary else []))
    if record_use:
        fact_ids = [h.fact.pk for h in included if h.fact is not None]
        fact_ids += [f.pk for h in included for f in h.related_facts]
        facts_mark_used(organization=organization, fact_ids=fact_ids)
    return Context(text=text, tokens=estimate_tokens(text), included=included, omitted=omitted, summary=summary)
