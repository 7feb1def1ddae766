"""The organization's dashboard: open tasks, running work, approvals waiting for me, spend this month.

It lives in the top app because it reads every layer below (automation's
tasks, accounts' approvals, tools' payment log and the gateway's model calls).
"""

from __future__ import annotations

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.models import Membership
from accounts.page_access import OrgAccess, org_page
from accounts.roles import Role, Scope
from agents.selectors_portal import llm_spend, payments_spend
from automation import selectors_portal as portal
from automation.models import TaskStatus
from automation.services.status import ACTIVE
from automation.views.common import render_org


@org_page()
@require_GET
def dashboard(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    organization = access.organization
    now = timezone.now()
    context: dict[str, object] = {
        "counts": Membership.objects.for_org(organization).aggregate(
            members=Count("pk"), admins=Count("pk", filter=Q(role__gte=Role.ADMIN))
        ),
    }
    if access.can(Scope.TASKS_READ):
        status_counts = portal.task_status_counts(organization=organization)
        context.update(
            status_counts=[{"status": value, "label": label, "count": status_counts[value]}
                           for value, label in TaskStatus.choices if value in ACTIVE],
            open_total=sum(status_counts[value] for value in ACTIVE),
            open_tasks=portal.open_tasks(organization=organization),
            running=portal.running_tasks(organization=organization),
            in_progress=status_counts[TaskStatus.IN_PROGRESS],
        )
    if access.can(Scope.APPROVALS_READ):
        context["waiting"] = portal.approvals_waiting_for(
            organization=organization, user=request.user, scopes=access.scopes, now=now  # type: ignore[arg-type]
        )
    since = portal.month_start(organization, now)
    context["month"] = since
    if access.can(Scope.USAGE_READ):
        context["llm"] = llm_spend(organization=organization, since=since, until=now)
    if access.can(Scope.TOOLS_FINANCIAL):
        context["payments"] = payments_spend(organization=organization, since=since, until=now)
    return render_org(request, access, "portal/dashboard.html", context)
