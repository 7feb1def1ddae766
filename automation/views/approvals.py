"""The approvals inbox: pending requests (decide those you may), and the latest decisions."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_GET, require_POST

from accounts.errors import ServiceError
from accounts.models import ApprovalRequest
from accounts.page_access import OrgAccess, org_page
from accounts.roles import Scope
from accounts.services.approvals import approval_decide
from automation import selectors_portal as portal
from automation.views.common import render_org
from automation.views.forms import ReasonForm, RequiredReasonForm


def _inbox(request: HttpRequest, access: OrgAccess, *, error_for: int | None = None, error: str = "",
           status: int = 200) -> HttpResponse:
    rows = portal.approvals_pending(organization=access.organization, user=request.user,  # type: ignore[arg-type]
                                    scopes=access.scopes)
    context = {
        "mine": [row for row in rows if row.can_decide],
        "others": [row for row in rows if not row.can_decide],
        "decided": portal.approvals_decided(organization=access.organization),
        "error_for": error_for,
        "error": error,
        # An error about a request no longer pending (decided in another tab) is shown above the lists.
        "error_on_top": bool(error) and all(row.approval.pk != error_for for row in rows),
    }
    return render_org(request, access, "automation/approvals.html", context, status=status)


@org_page(Scope.APPROVALS_READ)
@require_GET
def approval_inbox(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    return _inbox(request, access)


def _decide(request: HttpRequest, access: OrgAccess, pk: int, *, approve: bool) -> HttpResponse:
    """Decide through ``approval_decide``, which checks scope, expiry and self-approval of payments."""
    approval = get_object_or_404(ApprovalRequest.objects.for_org(access.organization), pk=pk)
    access.require(approval.required_scope)  # like the API's scope check: refused before the service is asked
    form = (ReasonForm if approve else RequiredReasonForm)(request.POST)
    if not form.is_valid():
        return _inbox(request, access, error_for=approval.pk, status=400,
                      error="Say why it is rejected." if not approve else "The reason is too long.")
    try:
        approval_decide(approval=approval, actor=request.user, approve=approve,  # type: ignore[arg-type]
                        reason=form.cleaned_data["reason"])
    except ServiceError as exc:
        return _inbox(request, access, error_for=approval.pk, error=exc.message, status=exc.status_code)
    messages.success(request, f"{'Approved' if approve else 'Rejected'}: {approval.title}")
    return redirect("approvals", org_slug=access.organization.slug)


@org_page(Scope.APPROVALS_READ)
@require_POST
def approval_approve(request: HttpRequest, access: OrgAccess, pk: int) -> HttpResponse:
    return _decide(request, access, pk, approve=True)


@org_page(Scope.APPROVALS_READ)
@require_POST
def approval_reject(request: HttpRequest, access: OrgAccess, pk: int) -> HttpResponse:
    return _decide(request, access, pk, approve=False)
