"""The approvals inbox: decide through the approvals service, with its checks; roles; other organizations."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import ApprovalRequest, AuditEvent
from accounts.roles import Scope
from tests.portal.factories import make_approval

pytestmark = pytest.mark.django_db


def _ids(html: str, section: str) -> list[int]:
    part = html[html.index(f'id="{section}-heading"'):]
    part = part[:part.index("</section>")]
    return [int(pk) for pk in re.findall(r'<li class="approval" id="approval-(\d+)">', part)]


def test_the_inbox_splits_what_i_may_decide_from_what_others_decide(tenant_a, page_for):
    """A manager sees a request to decide; a payment they asked for is listed as someone else's, with why."""
    org = tenant_a.organization
    laptop = make_approval(org, title="Laptop", requested_by=tenant_a.member, cost_estimate="1800", currency="EUR")
    mine = make_approval(org, title="Pay the caterer", requested_by=tenant_a.manager, financial=True,
                         cost_estimate="300", currency="EUR")
    financial = make_approval(org, title="Wire to vendor", required_scope=Scope.TOOLS_FINANCIAL)
    html = page_for(tenant_a.manager).get(f"/orgs/{tenant_a.slug}/approvals/").content.decode()
    assert _ids(html, "mine") == [laptop.pk]
    assert set(_ids(html, "others")) == {mine.pk, financial.pk}
    assert "you asked for this payment: someone else approves it" in html
    assert "needs the tools:financial scope" in html
    assert html.count("Approve<span") == 1


def test_a_manager_approves_and_the_decision_is_listed(tenant_a, page_for):
    """Approve goes through the service: approved, decided by the manager, audited, listed under Decided."""
    approval = make_approval(tenant_a.organization, requested_by=tenant_a.member)
    client = page_for(tenant_a.manager)
    response = client.post(f"/orgs/{tenant_a.slug}/approvals/{approval.pk}/approve/", follow=True)
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by_id) == ("approved", tenant_a.manager.pk)
    assert AuditEvent.objects.for_org(tenant_a.organization).filter(
        action="approval.approved", target_id=str(approval.pk), actor=tenant_a.manager).exists()
    html = response.content.decode()
    assert "Approved: Buy a laptop" in html
    decided = html[html.index(f'id="decided-{approval.pk}"'):]
    assert "Approved" in decided[:600]
    assert tenant_a.manager.email in decided[:600]


def test_a_rejection_needs_a_reason(tenant_a, page_for):
    """Reject without a reason answers 400 and leaves the request pending; with one, it is rejected."""
    approval = make_approval(tenant_a.organization, requested_by=tenant_a.member)
    client = page_for(tenant_a.manager)
    response = client.post(f"/orgs/{tenant_a.slug}/approvals/{approval.pk}/reject/", {"reason": "  "})
    assert response.status_code == 400
    assert "Say why it is rejected." in response.content.decode()
    approval.refresh_from_db()
    assert approval.status == "pending"
    client.post(f"/orgs/{tenant_a.slug}/approvals/{approval.pk}/reject/", {"reason": "over budget"})
    approval.refresh_from_db()
    assert (approval.status, approval.decision_reason) == ("rejected", "over budget")


def test_a_viewer_cannot_approve_or_reject(tenant_a, page_for):
    """A viewer's approve and reject are refused (403) before the service runs: nothing changes or is logged."""
    approval = make_approval(tenant_a.organization, requested_by=tenant_a.member)
    audit_before = AuditEvent.objects.for_org(tenant_a.organization).count()
    client = page_for(tenant_a.viewer)
    html = client.get(f"/orgs/{tenant_a.slug}/approvals/").content.decode()
    assert _ids(html, "others") == [approval.pk]
    assert "Approve<span" not in html
    assert client.post(f"/orgs/{tenant_a.slug}/approvals/{approval.pk}/approve/").status_code == 403
    assert client.post(f"/orgs/{tenant_a.slug}/approvals/{approval.pk}/reject/", {"reason": "no"}).status_code == 403
    approval.refresh_from_db()
    assert approval.status == "pending"
    assert AuditEvent.objects.for_org(tenant_a.organization).count() == audit_before


def test_the_service_refuses_approving_ones_own_payment(tenant_a, page_for):
    """A manager posting approve on their own payment request gets the service's 403; it stays pending."""
    approval = make_approval(tenant_a.organization, title="Pay the caterer", requested_by=tenant_a.manager,
                             financial=True, cost_estimate="300", currency="EUR")
    response = page_for(tenant_a.manager).post(f"/orgs/{tenant_a.slug}/approvals/{approval.pk}/approve/")
    assert response.status_code == 403
    assert "someone else has to approve it" in response.content.decode()
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_deciding_twice_answers_409(tenant_a, page_for):
    """A request decided in another tab answers 409 with the reason; the first decision stands."""
    approval = make_approval(tenant_a.organization, requested_by=tenant_a.member)
    client = page_for(tenant_a.manager)
    client.post(f"/orgs/{tenant_a.slug}/approvals/{approval.pk}/approve/")
    response = client.post(f"/orgs/{tenant_a.slug}/approvals/{approval.pk}/reject/", {"reason": "changed my mind"})
    assert response.status_code == 409
    assert "already approved" in response.content.decode()
    approval.refresh_from_db()
    assert approval.status == "approved"


def test_inbox_queries_do_not_grow_with_the_number_of_requests(tenant_a, page_for):
    """The inbox runs the same number of queries for 2 requests as for 20 (pending and decided)."""
    org = tenant_a.organization
    client = page_for(tenant_a.admin)
    for index in range(2):
        make_approval(org, title=f"Request {index}", requested_by=tenant_a.member)
    client.get(f"/orgs/{tenant_a.slug}/approvals/")
    with CaptureQueriesContext(connection) as few:
        client.get(f"/orgs/{tenant_a.slug}/approvals/")
    for index in range(18):
        approval = make_approval(org, title=f"More {index}", requested_by=tenant_a.member)
        if index % 2:
            client.post(f"/orgs/{tenant_a.slug}/approvals/{approval.pk}/approve/")
    with CaptureQueriesContext(connection) as many:
        assert client.get(f"/orgs/{tenant_a.slug}/approvals/").status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many]


def test_other_organizations_approvals_are_404_and_unchanged(tenants, page_for):
    """Another organization's slug or approval ids answer 404; approving them changes nothing."""
    a, b = tenants
    theirs = make_approval(b.organization, title="Globex bonus", requested_by=b.member)
    client = page_for(a.owner)
    assert client.get(f"/orgs/{b.slug}/approvals/").status_code == 404
    for slug in (a.slug, b.slug):
        assert client.post(f"/orgs/{slug}/approvals/{theirs.pk}/approve/").status_code == 404
        assert client.post(f"/orgs/{slug}/approvals/{theirs.pk}/reject/", {"reason": "x"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "pending"
    assert not ApprovalRequest.objects.for_org(a.organization).exists()
    assert "Globex bonus" not in client.get(f"/orgs/{a.slug}/approvals/").content.decode()
