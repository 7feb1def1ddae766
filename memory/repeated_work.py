"""Repeated-work detection: similar tasks recurring three or more times → suggest a workflow.

A pure function over task titles (the caller reads them from wherever tasks
live). Titles are reduced to a template: numbers, dates, months, weekdays,
quoted text and capitalized names inside the title become placeholders, so
"Send invoice to Acme for March" and "send invoice to Globex for April" share
"send invoice to {name} for {month}". Templates whose words overlap enough
(Jaccard) are grouped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MONTHS = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
}
WEEKDAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "mon", "tue", "wed", "thu",
            "fri", "sat", "sun", "today", "tomorrow", "yesterday"}
STOP = {"a", "an", "the", "to", "for", "of", "on", "in", "and", "with", "by", "at", "from", "our", "my", "we"}
_TOKEN = re.compile(r"\"[^\"]*\"|'[^']*'|[A-Za-z][\w&.\-']*|\d[\d/.\-:,]*|#\w+")


@dataclass
class WorkflowSuggestion:
    template: str
    count: int
    examples: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return (f"You have done \"{self.template}\" {self.count} times. Shall I turn it into a workflow?")


def title_template(title: str) -> list[str]:
    """The words of ``title`` with the variable parts replaced by placeholders."""
    words: list[str] = []
    for index, token in enumerate(_TOKEN.findall(title or "")):
        lower = token.lower()
        if token[0] in "\"'":
            words.append("{text}")
        elif token[0].isdigit() or token.startswith("#"):
            words.append("{number}")
        elif lower in MONTHS:
            words.append("{month}")
        elif lower in WEEKDAYS:
            words.append("{day}")
        elif index > 0 and token[0].isupper():
            words.append("{name}")
        else:
            words.append(lower)
    collapsed: list[str] = []
    for word in words:
        if not (collapsed and word == collapsed[-1] and word.startswith("{")):
            collapsed.append(word)
    return collapsed


def _content(words: Iterable[str]) -> set[str]:
    return {w for w in words if w not in STOP}


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def suggest_workflows(
    titles: Sequence[str], *, min_occurrences: int = 3, min_similarity: float = 0.6
) -> list[WorkflowSuggestion]:
    """Groups of similar titles seen at least ``min_occurrences`` times, largest first."""
    groups: list[tuple[list[str], set[str], list[str]]] = []  # (template, content words, titles)
    for title in titles:
        if not title or not title.strip():
            continue
        template = title_template(title)
        content = _content(template)
        if not content or all(w.startswith("{") for w in content):
            continue
        best = None
        best_score = 0.0
        for group in groups:
            score = 1.0 if group[0] == template else _jaccard(group[1], content)
            if score > best_score:
                best, best_score = group, score
        if best is not None and best_score >= min_similarity:
            best[2].append(title.strip())
        else:
            groups.append((template, content, [title.strip()]))
    suggestions = [
        WorkflowSuggestion(template=" ".join(template), count=len(members), examples=members[:5])
        for template, _content_words, members in groups
        if len(members) >= min_occurrences
    ]
    return sorted(suggestions, key=lambda s: (-s.count, s.template))
