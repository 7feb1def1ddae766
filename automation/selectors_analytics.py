"""Task analytics over a period: success rate, durations, failures by executor (reads only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Aggregate, Avg, Count, F, FloatField, Func, Q, QuerySet
from django.db.models.functions import TruncDate

from accounts.models import Organization
from automation.models import RunStatus, Task, TaskRun, TaskStatus


class _Epoch(Func):
    template = "EXTRACT(EPOCH FROM %(expressions)s)"
    output_field = FloatField()


class _Percentile(Aggregate):
    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), **extra)


@dataclass
class TaskAnalytics:
    since: datetime
    until: datetime
    completed: int = 0
    failed: int = 0
    success_rate: float | None = None
    mean_duration_seconds: float | None = None
    p50_duration_seconds: float | None = None
    p95_duration_seconds: float | None = None
    failures_by_executor: list[dict[str, Any]] = field(default_factory=list)
    failed_attempts_by_executor: list[dict[str, Any]] = field(default_factory=list)
    daily: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def task_analytics(
    *,
    organization: Organization,
    since: datetime,
    until: datetime,
    executor: str | None = None,
    source: str | None = None,
    workflow: int | None = None,
) -> TaskAnalytics:
    """Tasks that finished (completed or failed) in ``[since, until)``, in one organization."""
    tasks: QuerySet[Task] = Task.objects.for_org(organization)
    if executor:
        tasks = tasks.filter(executor=executor)
    if source:
        tasks = tasks.filter(source=source)
    if workflow is not None:
        tasks = tasks.filter(Q(assignee_kind="workflow", assignee_ref=str(workflow))
                             | Q(parent__assignee_kind="workflow", parent__assignee_ref=str(workflow)))
    completed = tasks.filter(status=TaskStatus.COMPLETED, completed_at__gte=since, completed_at__lt=until)
    failed = tasks.filter(status=TaskStatus.FAILED, failed_at__gte=since, failed_at__lt=until)
    result = TaskAnalytics(since=since, until=until, completed=completed.count(), failed=failed.count())
    finished = result.completed + result.failed
    result.success_rate = round(result.completed / finished, 4) if finished else None
    durations = completed.filter(actual_duration__isnull=False).aggregate(
        mean=Avg(_Epoch(F("actual_duration"))),
        p50=_Percentile(_Epoch(F("actual_duration")), 0.5),
        p95=_Percentile(_Epoch(F("actual_duration")), 0.95),
    )
    result.mean_duration_seconds = _round(durations["mean"])
    result.p50_duration_seconds = _round(durations["p50"])
    result.p95_duration_seconds = _round(durations["p95"])
    result.failures_by_executor = list(
        failed.values("executor").annotate(failed=Count("id")).order_by("-failed", "executor")
    )
    runs = TaskRun.objects.for_org(organization).filter(
        status__in=[RunStatus.FAILED, RunStatus.LOST], finished_at__gte=since, finished_at__lt=until,
        task__in=tasks,
    )
    result.failed_attempts_by_executor = list(
        runs.values("executor").annotate(failed=Count("id")).order_by("-failed", "executor")
    )
    days: dict[str, dict[str, Any]] = {}
    for row in completed.annotate(day=TruncDate("completed_at")).values("day").annotate(n=Count("id")):
        days.setdefault(row["day"].isoformat(), {"day": row["day"].isoformat(), "completed": 0, "failed": 0})[
            "completed"] = row["n"]
    for row in failed.annotate(day=TruncDate("failed_at")).values("day").annotate(n=Count("id")):
        days.setdefault(row["day"].isoformat(), {"day": row["day"].isoformat(), "completed": 0, "failed": 0})[
            "failed"] = row["n"]
    result.daily = [days[key] for key in sorted(days)]
    return result
