"""Reads the staff portal's pages need beyond the API's selectors (counts, inboxes, graphs, next runs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts.models import ApprovalRequest, ApprovalStatus, Organization, User
from automation.models import (
    RunStatus,
    Schedule,
    ScheduleFiring,
    Task,
    TaskDependency,
    TaskRun,
    TaskStatus,
    WorkflowRun,
)
from automation.services import schedules_clock as clock
from automation.services.schedules import timing_of
from automation.services.status import ACTIVE

NEXT_RUNS = 5


# --- tasks ------------------------------------------------------------------------------


def task_status_counts(*, organization: Organization) -> dict[str, int]:
    """How many of the organization's tasks are in each status (every status present, zero if none)."""
    counts = dict.fromkeys(TaskStatus.values, 0)
    for row in Task.objects.for_org(organization).values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    return counts


def open_tasks(*, organization: Organization, limit: int = 8) -> list[Task]:
    """Unfinished tasks, most urgent first (then oldest due, then newest)."""
    return list(
        Task.objects.for_org(organization).filter(status__in=ACTIVE)
        .select_related("assignee_user")
        .order_by("-priority", "due_at", "-created_at", "-id")[:limit]
    )


def running_tasks(*, organization: Organization, limit: int = 8) -> list[Task]:
    """Tasks in progress (run by a worker or done by a person), longest running first.

    Each carries ``current_run``: its running attempt, or None (a manual task, or between attempts).
    """
    tasks = list(
        Task.objects.for_org(organization).filter(status=TaskStatus.IN_PROGRESS)
        .select_related("assignee_user").order_by("started_at", "id")[:limit]
    )
    runs = {
        run.task_id: run
        for run in TaskRun.objects.for_org(organization).filter(task__in=[t.pk for t in tasks],
                                                                status=RunStatus.RUNNING)
    }
    for task in tasks:
        task.current_run = runs.get(task.pk)  # type: ignore[attr-defined]
    return tasks


def task_subtasks(*, task: Task) -> QuerySet[Task]:
    return Task.objects.for_org(task.organization).filter(parent=task).order_by("pk")


def task_with_people(*, organization: Organization, pk: int) -> Task | None:
    """One task of the organization with the users the detail page names, or None."""
    return (
        Task.objects.for_org(organization)
        .select_related("assignee_user", "created_by", "last_modified_by", "parent")
        .filter(pk=pk).first()
    )


@dataclass(frozen=True)
class TaskGraph:
    """A parent task's subtasks and the dependencies among them (``(task_id, depends_on_id)`` pairs)."""

    parent: Task
    nodes: list[Task]
    edges: list[tuple[int, int]]


def task_graph(*, parent: Task) -> TaskGraph:
    """The DAG of ``parent``'s subtasks; dependencies on tasks outside it are left out. Two queries."""
    nodes = list(task_subtasks(task=parent))
    ids = [node.pk for node in nodes]
    edges = list(
        TaskDependency.objects.for_org(parent.organization)
        .filter(task_id__in=ids, depends_on_id__in=ids)
        .order_by("task_id", "depends_on_id")
        .values_list("task_id", "depends_on_id")
    )
    return TaskGraph(parent=parent, nodes=nodes, edges=edges)


def workflow_runs(*, organization: Organization, limit: int = 50) -> list[WorkflowRun]:
    """Recent workflow runs with their template, version and parent task."""
    return list(
        WorkflowRun.objects.for_org(organization)
        .select_related("template", "version", "task", "started_by")
        .order_by("-created_at", "-id")[:limit]
    )


# --- schedules ----------------------------------------------------------------------------


def timing_next_runs(timing: clock.Timing, *, after: datetime, count: int = NEXT_RUNS) -> list[datetime]:
    """The next ``count`` firings of ``timing`` strictly after ``after`` (fewer if it stops)."""
    found: list[datetime] = []
    cursor = after
    while len(found) < count:
        upcoming = timing.next_after(cursor)
        if upcoming is None:
            break
        found.append(upcoming)
        cursor = upcoming
    return found


def schedule_next_runs(*, schedule: Schedule, count: int = NEXT_RUNS, now: datetime | None = None) -> list[datetime]:
    """When ``schedule`` fires next: from its stored next run on; none while disabled or for an event."""
    if not schedule.enabled or schedule.next_run_at is None:
        return []
    now = now or timezone.now()
    first = schedule.next_run_at
    rest = timing_next_runs(timing_of(schedule), after=max(first, now), count=count - 1) if count > 1 else []
    return [first, *[moment for moment in rest if moment > first]][:count]


def schedules_for_listing(*, organization: Organization) -> QuerySet[Schedule]:
    return Schedule.objects.for_org(organization).select_related("last_task", "created_by").order_by("name", "id")


# --- approvals -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalRow:
    approval: ApprovalRequest
    can_decide: bool
    why_not: str = ""


def approval_decidable_by(approval: ApprovalRequest, *, user: User, scopes: frozenset[str],
                          now: datetime) -> tuple[bool, str]:
    """Whether ``user`` (holding ``scopes``) may decide ``approval`` now, and if not, why.

    Mirrors the checks of ``accounts.services.approvals.approval_decide``, which decides.
    """
    if approval.status != ApprovalStatus.PENDING:
        return False, f"already {approval.status}"
    if approval.expires_at is not None and approval.expires_at <= now:
        return False, "expired"
    if approval.required_scope not in scopes:
        return False, f"needs the {approval.required_scope} scope"
    if approval.financial and approval.requested_by_id == user.pk:
        return False, "you asked for this payment: someone else approves it"
    return True, ""


def approvals_pending(*, organization: Organization, user: User, scopes: frozenset[str],
                      now: datetime | None = None) -> list[ApprovalRow]:
    """Pending approvals that have not expired, those the user may decide first."""
    now = now or timezone.now()
    rows = []
    pending = (
        ApprovalRequest.objects.for_org(organization)
        .filter(status=ApprovalStatus.PENDING)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .select_related("requested_by")
        .order_by("expires_at", "created_at", "id")
    )
    for approval in pending:
        allowed, why = approval_decidable_by(approval, user=user, scopes=scopes, now=now)
        rows.append(ApprovalRow(approval=approval, can_decide=allowed, why_not=why))
    rows.sort(key=lambda row: not row.can_decide)
    return rows


def approvals_waiting_for(*, organization: Organization, user: User, scopes: frozenset[str],
                          now: datetime | None = None) -> list[ApprovalRequest]:
    """Pending approvals ``user`` may decide now."""
    return [row.approval for row in approvals_pending(organization=organization, user=user, scopes=scopes, now=now)
            if row.can_decide]


def approvals_decided(*, organization: Organization, limit: int = 30) -> list[ApprovalRequest]:
    """The latest decided (approved, rejected, expired, voided) approvals."""
    return list(
        ApprovalRequest.objects.for_org(organization)
        .exclude(status=ApprovalStatus.PENDING)
        .select_related("decided_by", "requested_by")
        .order_by("-decided_at", "-id")[:limit]
    )


def month_start(organization: Organization, now: datetime | None = None) -> datetime:
    """The start of the current month in the organization's time zone."""
    tz = clock.zone(organization.timezone or "UTC")
    local = (now or timezone.now()).astimezone(tz)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def days_ago(days: int, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=days)


def schedule_firings(*, schedule: Schedule, limit: int = 20) -> list[ScheduleFiring]:
    """The latest firings of ``schedule`` with the task each created."""
    return list(
        ScheduleFiring.objects.for_org(schedule.organization).filter(schedule=schedule)
        .select_related("task").order_by("-scheduled_for", "-id")[:limit]
    )
