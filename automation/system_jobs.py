"""The system's own periodic jobs, declared here and nowhere else.

``manage.py setup_periodic_tasks`` writes them into django-celery-beat (the
runstack command runs it at start). Tenants' schedules do not belong here:
they live in their own table, dispatched by one ticker job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from automation import conf

PREFIX = "system:"


@dataclass(frozen=True)
class SystemJob:
    """One periodic job: a Celery task name run every ``every_seconds``."""

    name: str
    task: str
    every_seconds: float
    kwargs: dict[str, Any] = field(default_factory=dict)
    expires_seconds: float | None = None
    description: str = ""

    @property
    def periodic_task_name(self) -> str:
        return f"{PREFIX}{self.name}"


def system_jobs() -> list[SystemJob]:
    """Every system job, with intervals from settings."""
    every = conf.reconcile_every_seconds()
    return [
        SystemJob(
            name="automation.reconcile",
            task="automation.reconcile",
            every_seconds=every,
            expires_seconds=max(every * 5, 10),
            description="Take back expired leases, publish due retries and lost messages, age priorities.",
        ),
        # Jobs of apps below automation, which cannot register themselves here.
        SystemJob(
            name="tools.sweep_stale_calls",
            task="tools.sweep_stale_calls",
            every_seconds=60,
            expires_seconds=300,
            description="Mark tool calls whose worker died as interrupted, so a retry never repeats the effect.",
        ),
        SystemJob(
            name="memory.expiry_sweep",
            task="memory.expiry_sweep",
            every_seconds=6 * 3600,
            expires_seconds=3600,
            description="Open expiry reviews for facts past each organization's retention, keeping facts in use.",
        ),
        *_EXTRA,
    ]


_EXTRA: list[SystemJob] = []


def register_system_job(job: SystemJob) -> None:
    """Add a job declared by another module of the project (call at import time of that module)."""
    if all(existing.name != job.name for existing in _EXTRA):
        _EXTRA.append(job)
