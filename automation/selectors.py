"""Read-only queries of the automation engine."""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db.models import Prefetch, Q, QuerySet

from accounts.errors import InvalidInput
from accounts.models import Organization, User
from automation.models import Task, TaskDependency, TaskEvent, TaskRun, TaskRunLog


def tasks_filter(
    queryset: QuerySet[Task], *, organization: Organization, user: User | None = None, **filters: Any
) -> QuerySet[Task]:
    """Narrow an organization's tasks by the API's filters (already validated) and search."""
    if "status" in filters:
        queryset = queryset.filter(status__in=filters["status"])
    if "priority" in filters:
        queryset = queryset.filter(priority=filters["priority"])
    if "priority_min" in filters:
        queryset = queryset.filter(priority__gte=filters["priority_min"])
    if "priority_max" in filters:
        queryset = queryset.filter(priority__lte=filters["priority_max"])
    if "assignee" in filters:
        kind, ref = filters["assignee"]
        if kind == "me":
            queryset = queryset.filter(assignee_user=user)
        elif kind == "none":
            queryset = queryset.filter(assignee_kind="")
        elif kind == "user":
            if not ref.isdigit():
                raise InvalidInput("a user assignee is a user id", field="assignee")
            queryset = queryset.filter(assignee_user_id=int(ref))
        else:
            queryset = queryset.filter(assignee_kind=kind, assignee_ref=ref)
    if "due_before" in filters:
        queryset = queryset.filter(due_at__lt=filters["due_before"])
    if "due_after" in filters:
        queryset = queryset.filter(due_at__gte=filters["due_after"])
    if "source" in filters:
        queryset = queryset.filter(source=filters["source"])
    if "executor" in filters:
        queryset = queryset.filter(executor=filters["executor"])
    if "parent" in filters:
        queryset = queryset.filter(parent_id=filters["parent"])
    if filters.get("q"):
        vector = SearchVector("title", "description", config="english")
        query = SearchQuery(filters["q"], config="english", search_type="websearch")
        queryset = (
            queryset.annotate(search=vector).filter(search=query)
            .annotate(rank=SearchRank(vector, query)).order_by("-rank", "-created_at", "-id")
        )
    return queryset


def tasks_for_listing(queryset: QuerySet[Task], *, organization: Organization) -> QuerySet[Task]:
    """Join and prefetch what the task serializer reads (a fixed number of queries per page)."""
    return queryset.select_related("created_by", "last_modified_by", "assignee_user").prefetch_related(
        Prefetch(
            "dependency_links",
            queryset=TaskDependency.objects.for_org(organization).order_by("depends_on_id"),
            to_attr="prefetched_dependencies",
        )
    )


def task_events_after(*, task: Task, after: int = 0, limit: int = 200) -> tuple[list[TaskEvent], bool]:
    """Events of ``task`` with a sequence above ``after``, oldest first, and whether more follow."""
    rows = list(
        TaskEvent.objects.for_org(task.organization).filter(task=task, sequence__gt=after)
        .order_by("sequence")[: limit + 1]
    )
    return rows[:limit], len(rows) > limit


def task_runs(*, task: Task) -> QuerySet[TaskRun]:
    return TaskRun.objects.for_org(task.organization).filter(task=task).order_by("attempt")


def task_run_log(*, run: TaskRun) -> TaskRunLog | None:
    return TaskRunLog.objects.for_org(run.organization).filter(run=run).first()


def task_dependencies(*, task: Task) -> QuerySet[Task]:
    return Task.objects.for_org(task.organization).filter(
        pk__in=TaskDependency.objects.for_org(task.organization).filter(task=task).values("depends_on_id")
    ).order_by("pk")


def task_dependents(*, task: Task) -> QuerySet[Task]:
    return Task.objects.for_org(task.organization).filter(
        pk__in=TaskDependency.objects.for_org(task.organization).filter(depends_on=task).values("task_id")
    ).order_by("pk")


def active_filter() -> Q:
    return Q(status__in=["pending", "queued", "in_progress", "paused", "blocked"])
