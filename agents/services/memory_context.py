"""Business memory put before a model: the context builder's best facts for a query, as an untrusted block."""

from __future__ import annotations

import logging

from django.db import DatabaseError

from accounts.errors import ServiceError
from accounts.models import Organization
from agents import conf, prompts

logger = logging.getLogger(__name__)


def memory_text(*, organization: Organization, query: str, token_budget: int | None = None) -> tuple[str, list[int]]:
    """The relevant memory for ``query`` (text, fact ids); empty when memory is off or holds nothing."""
    from memory.context import build_context

    budget = conf.memory_context_tokens() if token_budget is None else token_budget
    if budget <= 0 or not query.strip():
        return "", []
    try:
        context = build_context(organization=organization, query=query, token_budget=budget)
    except (ServiceError, DatabaseError, ValueError):  # memory off, or unavailable: work without it
        logger.info("no business memory for organization %s", organization.pk, exc_info=True)
        return "", []
    facts = [h.fact.pk for h in context.included if h.fact is not None]
    return context.text, facts


def memory_block_for(*, organization: Organization, query: str) -> str:
    text, _ = memory_text(organization=organization, query=query)
    return prompts.memory_block(text)
