"""Approvals API and admin queue: list, filter, approve, reject; scopes and organization isolation."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import ApprovalRequest, ApprovalStatus, AuditEvent
from accounts.services.api_keys import api_key_create
from accounts.services.approvals import approval_request_create


def make(tenant, **kwargs):
    defaults = {
        "organization": tenant.organization,
        "kind": "task",
        "title": "Send the newsletter",
        "requested_by": tenant.member,
        "arguments": {"list": "customers"},
    }
    defaults.update(kwargs)
    return approval_request_create(**defaults)


def url(slug, pk=None, verb=None):
    base = f"/api/v1/orgs/{slug}/approvals/"
    if pk is not None:
        base += f"{pk}/"
    if verb:
        base += f"{verb}/"
    return base


def test_viewer_lists_and_filters_by_status(tenant_a, client_for):
    """A viewer sees the organization's approvals and can filter them by status."""
    pending = make(tenant_a)
    done = make(tenant_a, title="Other")
    client_for(tenant_a.manager).post(url(tenant_a.slug, done.pk, "approve"), {})
    client = client_for(tenant_a.viewer)
    response = client.get(url(tenant_a.slug))
    assert response.status_code == 200
    assert {r["id"] for r in response.json()["results"]} == {pending.pk, done.pk}
    response = client.get(url(tenant_a.slug), {"status": "pending"})
    assert [r["id"] for r in response.json()["results"]] == [pending.pk]
    body = client.get(url(tenant_a.slug, pending.pk)).json()
    assert body["arguments"] == {"list": "customers"}
    assert body["requested_by"] == tenant_a.member.email


def test_bad_status_filter_is_400(tenant_a, client_for):
    """An unknown status filter is a 400 naming the field."""
    response = client_for(tenant_a.viewer).get(url(tenant_a.slug), {"status": "maybe"})
    assert response.status_code == 400
    assert "status" in response.json()


def test_manager_approves_and_rejects(tenant_a, client_for):
    """A manager approves one request and rejects another with a reason."""
    first, second = make(tenant_a), make(tenant_a, title="Second")
    client = client_for(tenant_a.manager)
    response = client.post(url(tenant_a.slug, first.pk, "approve"), {"reason": "fine"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"
    assert response.json()["decided_by"] == tenant_a.manager.email
    response = client.post(url(tenant_a.slug, second.pk, "reject"), {"reason": "wrong list"})
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert response.json()["decision_reason"] == "wrong list"


def test_reject_without_reason_is_400(tenant_a, client_for):
    """Rejecting without a reason is a 400 naming the reason field; nothing changes."""
    approval = make(tenant_a)
    response = client_for(tenant_a.manager).post(url(tenant_a.slug, approval.pk, "reject"), {})
    assert response.status_code == 400
    assert "reason" in response.json()
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING


def test_member_without_decide_scope_gets_403(tenant_a, client_for):
    """A member (no approvals:decide) gets 403 on approve and reject; nothing changes."""
    approval = make(tenant_a, requested_by=tenant_a.admin)
    client = client_for(tenant_a.member)
    assert client.post(url(tenant_a.slug, approval.pk, "approve"), {}).status_code == 403
    assert client.post(url(tenant_a.slug, approval.pk, "reject"), {"reason": "x"}).status_code == 403
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING


def test_second_decision_is_409(tenant_a, client_for):
    """Deciding an approval twice answers 409 and keeps the first decision."""
    approval = make(tenant_a)
    client = client_for(tenant_a.manager)
    client.post(url(tenant_a.slug, approval.pk, "approve"), {})
    response = client_for(tenant_a.owner).post(url(tenant_a.slug, approval.pk, "reject"), {"reason": "late"})
    assert response.status_code == 409
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED


def test_financial_self_approval_is_403(tenant_a, client_for):
    """The requester of a financial action gets 403 approving it through the API."""
    approval = make(tenant_a, requested_by=tenant_a.manager, financial=True, cost_estimate="99", currency="USD")
    response = client_for(tenant_a.manager).post(url(tenant_a.slug, approval.pk, "approve"), {})
    assert response.status_code == 403
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING


def test_api_key_without_decide_scope_gets_403(tenant_a, api):
    """An owner's API key carrying only approvals:read cannot approve."""
    approval = make(tenant_a)
    issued = api_key_create(organization=tenant_a.organization, actor=tenant_a.owner, name="ro",
                            scopes=["approvals:read"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.secret}")
    assert api.get(url(tenant_a.slug)).status_code == 200
    assert api.post(url(tenant_a.slug, approval.pk, "approve"), {}).status_code == 403


def test_other_organization_gets_404_everywhere(tenants, client_for):
    """The other organization's owner gets 404 for list, retrieve, approve and reject; nothing changes."""
    a, b = tenants
    approval = make(a)
    intruder = client_for(b.owner)
    assert intruder.get(url(a.slug)).status_code == 404
    assert intruder.get(url(a.slug, approval.pk)).status_code == 404
    # Their own slug with our id: also 404.
    assert intruder.get(url(b.slug, approval.pk)).status_code == 404
    for slug in (a.slug, b.slug):
        assert intruder.post(url(slug, approval.pk, "approve"), {}).status_code == 404
        assert intruder.post(url(slug, approval.pk, "reject"), {"reason": "x"}).status_code == 404
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
    assert not AuditEvent.objects.dangerously_unscoped().filter(actor=b.owner).exists()
    assert intruder.get(url(b.slug)).json()["results"] == []


@pytest.fixture
def staff_client(tenant_a, client_for):
    owner = tenant_a.owner
    owner.is_staff = owner.is_superuser = True
    owner.save()
    return client_for(owner)


def test_admin_queue_lists_and_filters(tenant_a, staff_client):
    """The admin approvals queue lists requests and filters by status."""
    make(tenant_a, title="Visible pending")
    changelist = reverse("admin:accounts_approvalrequest_changelist")
    response = staff_client.get(changelist, {"status__exact": "pending"})
    assert response.status_code == 200
    assert b"Visible pending" in response.content
    assert staff_client.get(reverse("admin:accounts_auditevent_changelist"), {"action": "approval.requested"}
                            ).status_code == 200


def test_admin_reject_action_goes_through_service(tenant_a, staff_client):
    """The admin reject action asks for a reason, then rejects through the service (audited)."""
    approval = make(tenant_a)
    changelist = reverse("admin:accounts_approvalrequest_changelist")
    confirm = staff_client.post(
        changelist, {"action": "reject_selected", "_selected_action": [approval.pk]}, format="multipart"
    )
    assert confirm.status_code == 200
    assert b"Reason" in confirm.content
    staff_client.post(changelist, {"action": "reject_selected", "_selected_action": [approval.pk], "apply": "1",
                                   "reason": "duplicate"}, format="multipart")
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.REJECTED
    assert approval.decided_by == tenant_a.owner
    assert approval.decision_reason == "duplicate"
    assert AuditEvent.objects.for_org(tenant_a.organization).filter(action="approval.rejected").exists()


def test_admin_approve_respects_financial_rule(tenant_a, staff_client):
    """The admin approve action refuses the requester's own financial request and says why."""
    approval = make(tenant_a, requested_by=tenant_a.owner, financial=True, cost_estimate="10", currency="EUR")
    changelist = reverse("admin:accounts_approvalrequest_changelist")
    response = staff_client.post(
        changelist, {"action": "approve_selected", "_selected_action": [approval.pk], "apply": "1"}, follow=True,
        format="multipart",
    )
    assert b"someone else" in response.content
    assert ApprovalRequest.objects.for_org(tenant_a.organization).get(pk=approval.pk).status == "pending"
