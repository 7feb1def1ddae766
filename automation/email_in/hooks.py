"""Metadata extraction of inbound mail: a registry filled from above, a rule-based default.

automation knows no LLM. The agents app registers an extractor in its
``AppConfig.ready()``::

    from automation.email_in.hooks import register_metadata_extractor
    register_metadata_extractor(extract_with_model)

An extractor takes an :class:`ExtractionRequest` and returns
:class:`ExtractedMetadata` (or None when it cannot tell, e.g. no model is
available). When none is registered, or the registered one fails or
declines, the deterministic parser of :mod:`automation.email_in.rules`
answers; the result always says which one did (``source``) and how sure it
is (``confidence``, 0..1, per field and overall).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """A member the mail may name as assignee."""

    user_id: int
    email: str
    full_name: str


@dataclass(frozen=True)
class ExtractionRequest:
    organization_id: int
    organization_slug: str
    timezone: str
    sender_email: str
    subject: str
    text: str
    received_at: datetime
    members: tuple[Candidate, ...] = ()


@dataclass(frozen=True)
class ExtractedMetadata:
    """What a request says about itself; every field optional.

    ``assignee`` is an email address of a member (or a name the caller
    matches against members). ``automatable`` with an ``executor`` (and its
    ``parameters``) asks for the task to run on the engine at once.
    """

    due_at: datetime | None = None
    priority: int | None = None
    assignee: str = ""
    automatable: bool = False
    executor: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    confidence: float | None = None
    field_confidence: dict[str, float] = field(default_factory=dict)
    source: str = "rules"
    notes: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "priority": self.priority,
            "assignee": self.assignee,
            "automatable": self.automatable,
            "executor": self.executor,
            "confidence": self.confidence,
            "field_confidence": dict(self.field_confidence),
            "source": self.source,
            "notes": list(self.notes),
        }


MetadataExtractor = Callable[[ExtractionRequest], ExtractedMetadata | None]
_extractors: list[MetadataExtractor] = []


def register_metadata_extractor(extractor: MetadataExtractor) -> None:
    """Ask ``extractor`` first (the latest registered wins); registering it again keeps one."""
    if extractor in _extractors:
        _extractors.remove(extractor)
    _extractors.append(extractor)


def unregister_metadata_extractor(extractor: MetadataExtractor) -> None:
    if extractor in _extractors:
        _extractors.remove(extractor)


def _valid(result: Any) -> bool:
    if not isinstance(result, ExtractedMetadata):
        return False
    return result.confidence is None or 0 <= result.confidence <= 1


def extract_metadata(request: ExtractionRequest) -> ExtractedMetadata:
    """The registered extractors' answer (newest first), else the deterministic parser's."""
    from automation.email_in.rules import extract_by_rules

    for extractor in reversed(_extractors):
        try:
            result = extractor(request)
        except Exception:  # a failing model must not lose the mail: the rules answer instead
            logger.warning("metadata extractor %r failed; using the rules", extractor, exc_info=True)
            continue
        if result is None:
            continue
        if not _valid(result):
            logger.warning("metadata extractor %r returned %r; using the rules", extractor, result)
            continue
        return result
    return extract_by_rules(request)
