"""Admin views of tasks, runs, workflows, schedules and triggers across organizations.

Rows are read-only here: every change goes through the services (status
machine, audit). The actions a member would take in the portal (retry a
failed task, pause or resume a schedule or a trigger) are offered to staff who
are members of the row's organization with the scope the API asks for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from accounts.admin import ReadOnlyAdmin
from accounts.errors import ServiceError
from accounts.models import Membership
from accounts.roles import Scope
from automation.models import CircuitBreaker, Schedule, Task, TaskRun, Trigger, TriggerDelivery, WorkflowRun
from automation.services.schedules import schedule_update
from automation.services.tasks import task_retry
from automation.services.triggers import trigger_update


def _apply(admin_view: admin.ModelAdmin, request: HttpRequest, rows: QuerySet[Any], *, scope: str,  # type: ignore[type-arg]
           verb: str, change: Callable[[Model], Any]) -> None:
    """Run ``change`` on each row whose organization the staff user belongs to with ``scope``; report each refusal."""
    done = 0
    for row in rows.select_related("organization"):
        membership = Membership.objects.for_org(row.organization).filter(user=request.user).first()
        if membership is None or scope not in membership.scopes:
            admin_view.message_user(request, f"{row}: only a member of {row.organization} with the {scope} scope "
                                             f"can do this", messages.ERROR)
            continue
        try:
            change(row)
        except ServiceError as exc:
            admin_view.message_user(request, f"{row}: {exc.message}", messages.ERROR)
        else:
            done += 1
    if done:
        admin_view.message_user(request, f"{done} {verb}.", messages.SUCCESS)


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ["id", "title", "organization", "status", "source", "execution_type", "executor", "priority",
                    "retry_count", "created_at"]
    list_filter = ["status", "source", "execution_type", "executor"]
    search_fields = ["title", "failure_reason", "blocked_reason"]
    raw_id_fields = ["parent"]
    actions = ["retry_selected"]

    @admin.action(description="Retry the selected failed tasks")
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        _apply(self, request, queryset, scope=Scope.TASKS_WRITE, verb="task(s) retried",
               change=lambda task: task_retry(task=task, actor=request.user))  # type: ignore[arg-type]


@admin.register(TaskRun)
class TaskRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "task", "organization", "attempt", "status", "executor", "worker", "started_at",
                    "duration", "cost"]
    list_filter = ["status", "executor"]
    raw_id_fields = ["task"]


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "template", "organization", "version", "task", "started_by", "created_at"]
    raw_id_fields = ["task"]


class PausableAdmin(ReadOnlyAdmin):
    """Pause / resume actions through the row's own update service (``enabled``)."""

    actions = ["pause_selected", "resume_selected"]
    noun = ""

    def set_enabled(self, row: Any, *, actor: Any, enabled: bool) -> Any:
        raise NotImplementedError

    def _toggle(self, request: HttpRequest, queryset: QuerySet[Any], *, enabled: bool) -> None:
        _apply(self, request, queryset, scope=Scope.SCHEDULES_WRITE,
               verb=f"{self.noun}(s) {'resumed' if enabled else 'paused'}",
               change=lambda row: self.set_enabled(row, actor=request.user, enabled=enabled))

    @admin.action(description="Pause the selected rows")
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._toggle(request, queryset, enabled=False)

    @admin.action(description="Resume the selected rows (a schedule's next run is computed from now)")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._toggle(request, queryset, enabled=True)


@admin.register(Schedule)
class ScheduleAdmin(PausableAdmin):
    list_display = ["id", "name", "organization", "kind", "cron_expression", "interval_seconds", "timezone",
                    "enabled", "next_run_at", "last_run_at", "run_count", "last_error"]
    list_filter = ["kind", "enabled", "missed_run_policy"]
    search_fields = ["name", "task_title", "event_name"]
    noun = "schedule"

    def set_enabled(self, row: Any, *, actor: Any, enabled: bool) -> Any:
        return schedule_update(schedule=row, actor=actor, enabled=enabled)


@admin.register(Trigger)
class TriggerAdmin(PausableAdmin):
    list_display = ["id", "name", "organization", "kind", "event_name", "enabled", "last_fired_at", "fire_count"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "event_name", "task_title"]
    exclude = ["secret_nonce", "secret_ciphertext"]
    noun = "trigger"

    def set_enabled(self, row: Any, *, actor: Any, enabled: bool) -> Any:
        return trigger_update(trigger=row, actor=actor, enabled=enabled)


@admin.register(TriggerDelivery)
class TriggerDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "trigger", "organization", "received_at", "task", "depth"]
    raw_id_fields = ["task", "source_task"]


@admin.register(CircuitBreaker)
class CircuitBreakerAdmin(ReadOnlyAdmin):
    list_display = ["key", "organization", "state", "consecutive_failures", "opened_at", "last_error"]
