"""Celery interface of the tools app."""

from __future__ import annotations

from celery import shared_task

from tools.services.sweep import tool_calls_sweep_stale


@shared_task(name="tools.sweep_stale_calls", acks_late=True, ignore_result=True)
def sweep_stale_calls() -> int:
    """System job: fail tool calls whose worker died mid-call (see ``tool_calls_sweep_stale``)."""
    return tool_calls_sweep_stale()
