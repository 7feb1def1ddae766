"""Predicted duration of a task from the history of similar completed tasks.

Similar means, in order of preference: the same workflow step (``step_key``);
else the same executor with a title that shares words (PostgreSQL full-text
ranking over the indexed title and description: the embedded PostgreSQL ships
without pg_trgm); else the same executor. The median of the recent matches
is the estimate. Waiting tasks of the same step are re-estimated each time
one of its runs completes.
"""

from __future__ import annotations

import re
import statistics
from datetime import timedelta
from functools import reduce

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db.models import QuerySet

from automation.models import Task, TaskStatus

HISTORY = 50
SIMILAR = 20
CANDIDATES = 500
"""Title similarity is ranked among the executor's most recent completed tasks only (bounded work)."""
_WORD = re.compile(r"[A-Za-z0-9]{3,}")


def _median(durations: list[timedelta]) -> timedelta | None:
    if not durations:
        return None
    return timedelta(seconds=statistics.median(d.total_seconds() for d in durations))


def _history(organization_id: int) -> QuerySet[Task]:
    return Task.objects.dangerously_unscoped().filter(
        organization_id=organization_id, status=TaskStatus.COMPLETED, actual_duration__isnull=False
    )


def _title_query(title: str) -> SearchQuery | None:
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(title)))[:12]
    if not words:
        return None
    return reduce(lambda a, b: a | b, (SearchQuery(w, config="english") for w in words))


def estimate_duration(*, organization_id: int, executor: str, title: str, step_key: str = "") -> timedelta | None:
    """The predicted duration of a new task, or None when there is no history to go on."""
    history = _history(organization_id)
    if step_key:
        found = _median(list(history.filter(step_key=step_key).order_by("-completed_at")
                             .values_list("actual_duration", flat=True)[:HISTORY]))
        if found is not None:
            return found
    same_executor = history.filter(executor=executor)
    query = _title_query(title)
    if query is not None:
        vector = SearchVector("title", "description", config="english")
        recent = same_executor.order_by("-completed_at").values("pk")[:CANDIDATES]
        similar = (
            Task.objects.dangerously_unscoped().filter(pk__in=recent)
            .annotate(search=vector)
            .filter(search=query)
            .annotate(rank=SearchRank(vector, query))
            .order_by("-rank", "-completed_at")
            .values_list("actual_duration", flat=True)[:SIMILAR]
        )
        found = _median(list(similar))
        if found is not None:
            return found
    return _median(list(same_executor.order_by("-completed_at").values_list("actual_duration", flat=True)[:HISTORY]))


def refresh_waiting_estimates(task: Task) -> int:
    """After ``task`` completed, re-estimate the waiting tasks of the same step; return how many changed.

    Tasks without a step keep the estimate they got at creation (re-ranking
    titles on every completion would cost more than it tells).
    """
    if not task.step_key:
        return 0
    waiting = Task.objects.dangerously_unscoped().filter(
        organization_id=task.organization_id,
        step_key=task.step_key,
        status__in=[TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.BLOCKED, TaskStatus.PAUSED],
    )
    if not waiting.exists():
        return 0
    estimate = estimate_duration(
        organization_id=task.organization_id, executor=task.executor, title=task.title, step_key=task.step_key
    )
    return waiting.update(estimated_duration=estimate)
