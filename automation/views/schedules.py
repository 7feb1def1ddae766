"""Schedule pages: the list with each schedule's next runs, create forms per kind (with a preview), detail."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.errors import ServiceError
from accounts.page_access import OrgAccess, org_page
from accounts.roles import Scope
from automation import selectors_portal as portal
from automation.models import Schedule
from automation.services import schedules as schedule_services
from automation.views.common import render_org
from automation.views.forms import KIND_TITLES, SCHEDULE_FORMS, ScheduleForm

LIST_NEXT_RUNS = 3
DETAIL_NEXT_RUNS = 10


@org_page(Scope.SCHEDULES_READ)
@require_GET
def schedule_list(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    now = timezone.now()
    rows = [
        {"schedule": schedule, "next_runs": portal.schedule_next_runs(schedule=schedule, count=LIST_NEXT_RUNS, now=now)}
        for schedule in portal.schedules_for_listing(organization=access.organization)
    ]
    return render_org(request, access, "automation/schedule_list.html", {"rows": rows, "kinds": KIND_TITLES})


def _preview(form: ScheduleForm, access: OrgAccess) -> list:
    """The next runs the form's timing would give, computed by the service's own check (nothing is saved)."""
    kwargs = form.timing_kwargs()
    now = timezone.now()
    checked = schedule_services.check_timing(
        schedule_services.TimingInput(
            kind=form.kind, cron_expression=kwargs.get("cron_expression", ""),
            timezone=kwargs.get("timezone_name", ""), interval_seconds=kwargs.get("interval_seconds"),
            run_at=kwargs.get("run_at"), event_name=kwargs.get("event_name", ""),
        ),
        now=now, allowed_kinds=schedule_services.SCHEDULE_KINDS,
        default_timezone=access.organization.timezone or "UTC",
    )
    if checked.next_run_at is None:
        return []
    timing = schedule_services.timing_of_fields(checked.fields)
    later = portal.timing_next_runs(timing, after=checked.next_run_at, count=portal.NEXT_RUNS - 1)
    return [checked.next_run_at, *later]


@org_page(Scope.SCHEDULES_WRITE)
@require_http_methods(["GET", "POST"])
def schedule_new(request: HttpRequest, access: OrgAccess, kind: str) -> HttpResponse:
    """Create a schedule of one kind. "Preview" shows the next run times without saving anything."""
    form_class = SCHEDULE_FORMS.get(kind)
    if form_class is None:
        raise Http404("No such kind of schedule.")
    organization = access.organization
    form = form_class(request.POST or None, timezone_name=organization.timezone or "UTC")
    status = 200
    preview = None
    if request.method == "POST":
        if not form.is_valid():
            status = 400
        else:
            try:
                if "preview" in request.POST:
                    preview = _preview(form, access)
                else:
                    schedule = schedule_services.schedule_create(
                        organization=organization, actor=request.user,  # type: ignore[arg-type]
                        **form.service_kwargs(),
                    )
                    messages.success(request, f"Created the schedule “{schedule.name}”.")
                    return redirect("schedule-detail", org_slug=organization.slug, pk=schedule.pk)
            except ServiceError as exc:
                form.add_error(form.error_field(exc.field), exc.message)
                status = exc.status_code
    context = {"form": form, "kind": kind, "kinds": KIND_TITLES, "preview": preview}
    return render_org(request, access, "automation/schedule_new.html", context, status=status)


def _schedule_or_404(access: OrgAccess, pk: int) -> Schedule:
    return get_object_or_404(portal.schedules_for_listing(organization=access.organization), pk=pk)


@org_page(Scope.SCHEDULES_READ)
@require_GET
def schedule_detail(request: HttpRequest, access: OrgAccess, pk: int) -> HttpResponse:
    schedule = _schedule_or_404(access, pk)
    context = {
        "schedule": schedule,
        "next_runs": portal.schedule_next_runs(schedule=schedule, count=DETAIL_NEXT_RUNS),
        "firings": portal.schedule_firings(schedule=schedule),
    }
    return render_org(request, access, "automation/schedule_detail.html", context)


@org_page(Scope.SCHEDULES_WRITE)
@require_POST
def schedule_toggle(request: HttpRequest, access: OrgAccess, pk: int) -> HttpResponse:
    schedule = _schedule_or_404(access, pk)
    enable = request.POST.get("enabled") == "1"
    try:
        schedule_services.schedule_update(schedule=schedule, actor=request.user, enabled=enable)  # type: ignore[arg-type]
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{'Enabled' if enable else 'Paused'} “{schedule.name}”.")
    return redirect("schedule-detail", org_slug=access.organization.slug, pk=schedule.pk)


@org_page(Scope.SCHEDULES_READ)
@require_POST
def schedule_run_now(request: HttpRequest, access: OrgAccess, pk: int) -> HttpResponse:
    access.require(Scope.TASKS_WRITE)
    schedule = _schedule_or_404(access, pk)
    try:
        task = schedule_services.schedule_run_now(schedule=schedule, actor=request.user)  # type: ignore[arg-type]
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("schedule-detail", org_slug=access.organization.slug, pk=schedule.pk)
    messages.success(request, f"“{schedule.name}” created task #{task.pk}.")
    return redirect("task-detail", org_slug=access.organization.slug, pk=task.pk)


@org_page(Scope.SCHEDULES_WRITE)
@require_POST
def schedule_delete(request: HttpRequest, access: OrgAccess, pk: int) -> HttpResponse:
    schedule = _schedule_or_404(access, pk)
    schedule_services.schedule_delete(schedule=schedule, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, f"Deleted the schedule “{schedule.name}”.")
    return redirect("schedule-list", org_slug=access.organization.slug)
