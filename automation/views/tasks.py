"""Task pages: the filtered list, the create form, the detail with its live timeline, runs, and actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.errors import ServiceError
from accounts.forms import apply_service_error
from accounts.models import Membership, User
from accounts.page_access import OrgAccess, org_page
from accounts.roles import Scope
from automation import selectors
from automation import selectors_portal as portal
from automation.api.serializers import TaskFilterSerializer
from automation.models import (
    AssigneeKind,
    BlockedKind,
    ExecutionType,
    Priority,
    Task,
    TaskEvent,
    TaskSource,
    TaskStatus,
)
from automation.services import tasks as task_services
from automation.services.status import ACTIVE, FINAL
from automation.views.common import query_without, render_org, safe_next
from automation.views.forms import ReasonForm, RequiredReasonForm, TaskCreateForm

PAGE_SIZE = 50
TIMELINE_LIMIT = 500
S = TaskStatus


def _members(access: OrgAccess) -> list[Membership]:
    return list(Membership.objects.for_org(access.organization).select_related("user").order_by("user__email"))


def assignee_label(task: Task) -> str:
    if task.assignee_kind == AssigneeKind.USER:
        return task.assignee_user.email if task.assignee_user else "a former member"
    if task.assignee_kind:
        return f"{task.assignee_kind} {task.assignee_ref}"
    return ""


def event_summary(type_: str, payload: dict[str, Any]) -> str:
    """One line saying what an event recorded. ``static/portal.js`` mirrors this for live events."""
    payload = payload if isinstance(payload, dict) else {}
    if type_ == "status_changed":
        text = f"{payload.get('from', '?')} → {payload.get('to', '?')}"
        return f"{text}: {payload['reason']}" if payload.get("reason") else text
    parts = []
    for key, value in payload.items():
        if isinstance(value, (str, int, float, bool)) and value not in ("", None):
            parts.append(f"{key}: {value}")
        elif isinstance(value, list) and value and all(isinstance(v, (str, int)) for v in value):
            parts.append(f"{key}: {', '.join(str(v) for v in value)}")
    return "; ".join(parts)[:300]


# --- list ----------------------------------------------------------------------------------------


def _filter_input(request: HttpRequest) -> dict[str, str]:
    """The list's query string in the API filter's shape (several ``status`` values become a comma list)."""
    data: dict[str, str] = {}
    statuses = [value for value in request.GET.getlist("status") if value.strip()]
    if statuses:
        data["status"] = ",".join(statuses)
    for key in ("priority", "assignee", "source", "q"):
        value = request.GET.get(key, "").strip()
        if value:
            data[key] = value
    return data


@org_page(Scope.TASKS_READ)
@require_GET
def task_list(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    """Tasks filtered by status, priority, assignee and source, and searched, with the API's filter and selector."""
    organization = access.organization
    raw = _filter_input(request)
    incoming = TaskFilterSerializer(data=raw)
    errors: dict[str, list[str]] = {}
    queryset = Task.objects.for_org(organization)
    if incoming.is_valid():
        try:
            queryset = selectors.tasks_filter(queryset, organization=organization, user=request.user,  # type: ignore[arg-type]
                                              **incoming.validated_data)
        except ServiceError as exc:
            errors[exc.field or "q"] = [exc.message]
    else:
        errors = {key: [str(m) for m in value] for key, value in incoming.errors.items()}
    if errors:
        queryset = queryset.none()
    page = Paginator(queryset.select_related("assignee_user"), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"task": task, "assignee": assignee_label(task)} for task in page.object_list]
    context = {
        "page": page,
        "rows": rows,
        "errors": errors,
        "selected_statuses": raw.get("status", "").split(",") if raw.get("status") else [],
        "values": raw,
        "statuses": TaskStatus.choices,
        "priorities": Priority.choices,
        "sources": TaskSource.choices,
        "members": _members(access),
        "paging_query": query_without(request, "page"),
        "filtered": bool(raw),
    }
    return render_org(request, access, "automation/task_list.html", context, status=400 if errors else 200)


# --- create ------------------------------------------------------------------------------------------


@org_page(Scope.TASKS_WRITE)
@require_http_methods(["GET", "POST"])
def task_new(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    organization = access.organization
    members = _members(access)
    form = TaskCreateForm(request.POST or None, memberships=members, timezone_name=organization.timezone or "UTC")
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = dict(form.cleaned_data)
            users: dict[int, User] = {m.user_id: m.user for m in members}
            assignee_id = data.pop("assignee_user")
            try:
                task = task_services.task_create(
                    organization=organization, actor=request.user,  # type: ignore[arg-type]
                    source=TaskSource.API, assignee=users.get(assignee_id) if assignee_id else None, **data,
                )
            except ServiceError as exc:
                apply_service_error(form, exc)
                status = exc.status_code
            else:
                messages.success(request, f"Created task #{task.pk}.")
                return redirect("task-detail", org_slug=organization.slug, pk=task.pk)
        else:
            status = 400
    return render_org(request, access, "automation/task_new.html", {"form": form}, status=status)


# --- detail ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskAction:
    """A button on the task page: its scope, when it applies, the service it calls, and its form."""

    label: str
    scope: str
    applies: Callable[[Task], bool]
    run: Callable[..., Task]
    form: type[forms.Form] | None = None
    style: str = "secondary"
    done: str = ""


def _parked(task: Task) -> bool:
    return task.status == S.BLOCKED and task.blocked_kind in (BlockedKind.PARKED, BlockedKind.MANUAL)


ACTIONS: dict[str, TaskAction] = {
    "execute": TaskAction(
        "Execute", Scope.TASKS_EXECUTE,
        lambda t: t.status == S.PENDING and t.execution_type != ExecutionType.MANUAL,
        task_services.task_execute, style="", done="Execution requested",
    ),
    "start": TaskAction(
        "Start", Scope.TASKS_EXECUTE,
        lambda t: t.status == S.PENDING and t.execution_type == ExecutionType.MANUAL,
        task_services.task_start, style="", done="Started",
    ),
    "complete": TaskAction(
        "Mark done", Scope.TASKS_WRITE,
        lambda t: (t.execution_type == ExecutionType.MANUAL and t.status in (S.PENDING, S.IN_PROGRESS)) or _parked(t),
        task_services.task_complete, style="", done="Completed",
    ),
    "retry": TaskAction("Retry", Scope.TASKS_EXECUTE, lambda t: t.status == S.FAILED, task_services.task_retry,
                        style="", done="Retry requested"),
    "pause": TaskAction("Pause", Scope.TASKS_WRITE, lambda t: t.status in (S.PENDING, S.QUEUED),
                        task_services.task_pause, done="Paused"),
    "resume": TaskAction("Resume", Scope.TASKS_EXECUTE, lambda t: t.status == S.PAUSED or _parked(t),
                         task_services.task_resume, form=ReasonForm, done="Resumed"),
    "fail": TaskAction(
        "Mark failed", Scope.TASKS_WRITE,
        lambda t: (t.execution_type == ExecutionType.MANUAL and t.status == S.IN_PROGRESS) or _parked(t),
        task_services.task_fail, form=RequiredReasonForm, style="danger", done="Marked failed",
    ),
    "cancel": TaskAction("Cancel task", Scope.TASKS_WRITE, lambda t: t.status in ACTIVE, task_services.task_cancel,
                         form=ReasonForm, style="danger", done="Cancelled"),
}
ACTION_PATTERN = "|".join(ACTIONS)


def _task_or_404(access: OrgAccess, pk: int) -> Task:
    task = portal.task_with_people(organization=access.organization, pk=pk)
    if task is None:
        raise Http404("No such task.")
    return task


def _event_rows(events: list[TaskEvent]) -> list[dict[str, Any]]:
    return [{"event": e, "summary": event_summary(e.type, e.payload)} for e in events]


def _detail_page(
    request: HttpRequest, access: OrgAccess, task: Task, *, action_error: str = "",
    failed_action: str = "", status: int = 200,
) -> HttpResponse:
    events, more = selectors.task_events_after(task=task, after=0, limit=TIMELINE_LIMIT)
    actions = [
        {"name": name, "action": action, "needs_reason": action.form is RequiredReasonForm,
         "has_reason": action.form is not None}
        for name, action in ACTIONS.items()
        if action.applies(task) and access.can(action.scope)
    ]
    subtasks = list(portal.task_subtasks(task=task))
    context = {
        "task": task,
        "assignee": assignee_label(task),
        "events": _event_rows(events),
        "more_events": more,
        "last_sequence": events[-1].sequence if events else 0,
        "runs": list(selectors.task_runs(task=task)),
        "dependencies": list(selectors.task_dependencies(task=task)),
        "dependents": list(selectors.task_dependents(task=task)),
        "subtasks": subtasks,
        "actions": actions,
        "action_error": action_error,
        "failed_action": failed_action,
        "is_final": task.status in FINAL,
        "events_api": reverse("task-events", kwargs={"org_slug": access.organization.slug, "pk": task.pk}),
    }
    return render_org(request, access, "automation/task_detail.html", context, status=status)


@org_page(Scope.TASKS_READ)
@require_GET
def task_detail(request: HttpRequest, access: OrgAccess, pk: int) -> HttpResponse:
    return _detail_page(request, access, _task_or_404(access, pk))


@org_page(Scope.TASKS_READ)
@require_POST
def task_action(request: HttpRequest, access: OrgAccess, pk: int, action: str) -> HttpResponse:
    """Run one action through its service; a refusal is shown on the task page with its status code."""
    spec = ACTIONS.get(action)
    if spec is None:
        raise Http404("No such action.")
    task = _task_or_404(access, pk)
    access.require(spec.scope)
    kwargs: dict[str, Any] = {}
    if spec.form is not None:
        form = spec.form(request.POST)
        if not form.is_valid():
            message = "; ".join(str(e) for errors in form.errors.values() for e in errors)
            return _detail_page(request, access, task, action_error=f"{spec.label}: {message}",
                                failed_action=action, status=400)
        kwargs["reason"] = form.cleaned_data["reason"]
    try:
        spec.run(task=task, actor=request.user, **kwargs)
    except ServiceError as exc:
        return _detail_page(request, access, _task_or_404(access, pk), action_error=exc.message,
                            failed_action=action, status=exc.status_code)
    messages.success(request, f"{spec.done}: #{task.pk} {task.title}")
    default = reverse("task-detail", kwargs={"org_slug": access.organization.slug, "pk": task.pk})
    return redirect(safe_next(request, default))


@org_page(Scope.TASKS_READ)
@require_GET
def task_run(request: HttpRequest, access: OrgAccess, pk: int, attempt: int) -> HttpResponse:
    """One attempt with its full log and output."""
    task = _task_or_404(access, pk)
    run = selectors.task_runs(task=task).filter(attempt=attempt).first()
    if run is None:
        raise Http404("No such run.")
    full = selectors.task_run_log(run=run)
    context = {
        "task": task,
        "run": run,
        "log": full.text if full is not None else run.log_excerpt,
        "output_text": full.output_text if full is not None and full.output_text else None,
    }
    return render_org(request, access, "automation/task_run.html", context)
