"""Hooks other code subscribes to.

``budget_warning``: sent after the commit that recorded a budget threshold
(80% or 100% of a daily, monthly or task budget), with ``organization`` and
``warning`` (an :class:`agents.models.LLMBudgetWarning`)::

    from agents.llm.signals import budget_warning

    @receiver(budget_warning)
    def tell_the_admins(sender, organization, warning, **kwargs): ...
"""

from __future__ import annotations

from django.dispatch import Signal

budget_warning = Signal()
