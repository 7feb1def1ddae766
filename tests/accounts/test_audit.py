"""The audit log: one event per change, in the change's transaction, and never changed afterwards."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts import request_context
from accounts.errors import InvalidInput
from accounts.models import AuditEvent, Invitation, Membership, Organization
from accounts.models.audit import ImmutableRow
from accounts.roles import Role, Scope
from accounts.services import invitations, members, organizations
from tests.accounts.factories import make_api_key, make_audit_event, make_invitation, make_member
from tests.factories import UserFactory

IP = "203.0.113.7"
REQUEST_ID = "req-audit-42"


@dataclass(frozen=True)
class Operation:
    action: str
    method: str
    path: Callable[[Any, dict[str, Any]], str]
    body: dict[str, Any] | None = None
    status: int = 200


def _prepare(a: Any) -> dict[str, Any]:
    return {
        "member": make_member(a.organization, Role.MEMBER),
        "invitation": make_invitation(a.organization, a.owner)[0],
        "key": make_api_key(a.organization, a.owner, scopes=[Scope.ORG_READ])[0],
    }


OPERATIONS = [
    Operation("organization.created", "POST", lambda a, o: "/api/v1/orgs/", {"name": "Audited Co"}, 201),
    Operation("organization.updated", "PATCH", lambda a, o: f"/api/v1/orgs/{a.slug}/", {"timezone": "Europe/Berlin"}),
    Operation(
        "member.role_changed",
        "PATCH",
        lambda a, o: f"/api/v1/orgs/{a.slug}/members/{o['member'].pk}/",
        {"role": "manager"},
    ),
    Operation("member.removed", "DELETE", lambda a, o: f"/api/v1/orgs/{a.slug}/members/{o['member'].pk}/", None, 204),
    Operation(
        "member.invited", "POST", lambda a, o: f"/api/v1/orgs/{a.slug}/invitations/", {"email": "n@example.test"}, 201
    ),
    Operation(
        "member.invitation_revoked",
        "DELETE",
        lambda a, o: f"/api/v1/orgs/{a.slug}/invitations/{o['invitation'].pk}/",
        None,
        204,
    ),
    Operation(
        "apikey.created",
        "POST",
        lambda a, o: f"/api/v1/orgs/{a.slug}/api-keys/",
        {"name": "deploy", "scopes": [Scope.ORG_READ]},
        201,
    ),
    Operation("apikey.revoked", "POST", lambda a, o: f"/api/v1/orgs/{a.slug}/api-keys/{o['key'].pk}/revoke/"),
]


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.action)
def test_each_change_writes_one_event_with_actor_ip_and_request_id(op: Operation, tenants, client_for):
    """Each service behind the API writes exactly one event naming the actor, the client IP and the request id."""
    a, _ = tenants
    objects = _prepare(a)
    before = set(AuditEvent.objects.dangerously_unscoped().values_list("pk", flat=True))
    response = client_for(a.owner).generic(
        op.method,
        op.path(a, objects),
        data="" if op.body is None else json.dumps(op.body),
        content_type="application/json",
        REMOTE_ADDR=IP,
        HTTP_X_REQUEST_ID=REQUEST_ID,
    )
    assert response.status_code == op.status, response.content
    assert response["X-Request-ID"] == REQUEST_ID
    new = list(AuditEvent.objects.dangerously_unscoped().exclude(pk__in=before))
    assert len(new) == 1, [e.action for e in new]
    event = new[0]
    assert event.action == op.action
    assert event.actor_id == a.owner.pk
    assert event.actor_label == a.owner.email
    assert event.ip_address == IP
    assert event.request_id == REQUEST_ID
    assert event.target_type


def test_accepting_an_invitation_writes_one_event(tenant_a):
    """Accepting an invitation records who joined, with the request's IP and id."""
    _invitation, token = make_invitation(tenant_a.organization, tenant_a.owner, email="joiner@example.test")
    joiner = UserFactory(email="joiner@example.test")
    before = AuditEvent.objects.for_org(tenant_a.organization).count()
    marker = request_context.set_current(request_context.RequestMeta(ip=IP, request_id=REQUEST_ID))
    try:
        invitations.invitation_accept(token=token, user=joiner)
    finally:
        request_context.reset(marker)
    events = AuditEvent.objects.for_org(tenant_a.organization).order_by("-id")
    assert events.count() == before + 1
    event = events.first()
    assert (event.action, event.actor_id, event.ip_address, event.request_id) == (
        "member.joined",
        joiner.pk,
        IP,
        REQUEST_ID,
    )


def test_orm_cannot_change_or_delete_an_event(tenant_a):
    """Saving an existing event or deleting it through the model is refused."""
    event = make_audit_event(tenant_a.organization, tenant_a.owner)
    event.action = "tampered"
    with pytest.raises(ImmutableRow):
        event.save()
    with pytest.raises(ImmutableRow):
        event.delete()
    event.refresh_from_db()
    assert event.action == "test.happened"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda qs: qs.update(action="tampered"), id="queryset-update"),
        pytest.param(lambda qs: qs.delete(), id="queryset-delete"),
    ],
)
def test_bulk_orm_change_is_refused_by_the_database(change, tenant_a):
    """Bulk update/delete (which skip the model's save/delete) are refused by the database trigger."""
    event = make_audit_event(tenant_a.organization, tenant_a.owner)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        change(AuditEvent.objects.for_org(tenant_a.organization).filter(pk=event.pk))
    assert AuditEvent.objects.for_org(tenant_a.organization).get(pk=event.pk).action == "test.happened"


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE accounts_auditevent SET action = 'tampered' WHERE id = %s",
        "DELETE FROM accounts_auditevent WHERE id = %s",
    ],
    ids=["update", "delete"],
)
def test_raw_sql_change_is_refused_by_the_trigger(sql, tenant_a):
    """Raw SQL UPDATE and DELETE on the audit table fail in the database."""
    event = make_audit_event(tenant_a.organization, tenant_a.owner)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.for_org(tenant_a.organization).get(pk=event.pk).action == "test.happened"


class AuditDown(Exception):
    pass


def _failing_audit(**kwargs: Any) -> None:
    raise AuditDown("the audit log is unavailable")


def test_failing_role_change_leaves_no_change_and_no_event(tenant_a, monkeypatch):
    """If writing the event fails, the role change is rolled back with it."""
    target = make_member(tenant_a.organization, Role.MEMBER)
    events = AuditEvent.objects.for_org(tenant_a.organization).count()
    monkeypatch.setattr(members, "audit_record", _failing_audit)
    with pytest.raises(AuditDown):
        members.membership_change_role(membership=target, actor=tenant_a.owner, role=Role.ADMIN)
    assert Membership.objects.for_org(tenant_a.organization).get(pk=target.pk).role == Role.MEMBER
    assert AuditEvent.objects.for_org(tenant_a.organization).count() == events


def test_failing_member_removal_keeps_the_member_and_their_keys(tenant_a, monkeypatch):
    """A removal that fails half-way leaves the membership and its API keys as they were."""
    target = make_member(tenant_a.organization, Role.ADMIN)
    key, _ = make_api_key(tenant_a.organization, target.user, scopes=[Scope.ORG_READ])
    monkeypatch.setattr(members, "audit_record", _failing_audit)
    with pytest.raises(AuditDown):
        members.membership_remove(membership=target, actor=tenant_a.owner)
    assert Membership.objects.for_org(tenant_a.organization).filter(pk=target.pk).exists()
    key.refresh_from_db()
    assert key.revoked_at is None


def test_failing_organization_create_leaves_nothing(tenant_a, monkeypatch):
    """A failed organization creation leaves no organization, no membership and no event."""
    counts = (Organization.objects.count(), Membership.objects.dangerously_unscoped().count())
    events = AuditEvent.objects.dangerously_unscoped().count()
    monkeypatch.setattr(organizations, "audit_record", _failing_audit)
    with pytest.raises(AuditDown):
        organizations.organization_create(user=tenant_a.owner, name="Half Written")
    assert (Organization.objects.count(), Membership.objects.dangerously_unscoped().count()) == counts
    assert AuditEvent.objects.dangerously_unscoped().count() == events
    assert not Organization.objects.filter(slug="half-written").exists()


def test_failing_invitation_leaves_nothing(tenant_a, monkeypatch):
    """A failed invitation leaves no invitation and no event (and sends no email)."""
    from django.core import mail

    monkeypatch.setattr(invitations, "audit_record", _failing_audit)
    with pytest.raises(AuditDown):
        invitations.invitation_create(
            organization=tenant_a.organization, actor=tenant_a.owner, email="x@example.test", role=Role.MEMBER
        )
    assert not Invitation.objects.for_org(tenant_a.organization).exists()
    assert mail.outbox == []


def test_refused_change_writes_no_event(tenant_a):
    """A refused change (demoting the only owner) writes nothing."""
    owner = Membership.objects.for_org(tenant_a.organization).get(user=tenant_a.owner)
    events = AuditEvent.objects.for_org(tenant_a.organization).count()
    with pytest.raises(InvalidInput):
        members.membership_change_role(membership=owner, actor=tenant_a.owner, role=Role.ADMIN)
    assert AuditEvent.objects.for_org(tenant_a.organization).count() == events


def insert_event(organization: Organization, actor: Any, action: str, at: Any) -> AuditEvent:
    """An event with a chosen time (created_at is set on insert and rows cannot be updated)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_auditevent (organization_id, actor_id, actor_label, action, target_type, target_id,"
            " target_label, ip_address, request_id, created_at)"
            " VALUES (%s, %s, %s, %s, '', '', '', NULL, '', %s) RETURNING id",
            [organization.pk, actor.pk, actor.email, action, at],
        )
        pk = cursor.fetchone()[0]
    return AuditEvent.objects.for_org(organization).get(pk=pk)


def test_audit_list_filters_by_actor_action_and_time(tenants, client_for):
    """The audit list filters by actor email, action prefix and a time range; B's events never appear."""
    a, b = tenants
    now = timezone.now()
    old = insert_event(a.organization, a.owner, "member.invited", now - timedelta(days=10))
    recent = insert_event(a.organization, a.admin, "member.removed", now - timedelta(hours=1))
    other = insert_event(a.organization, a.admin, "apikey.created", now - timedelta(hours=2))
    insert_event(b.organization, b.owner, "member.invited", now - timedelta(hours=1))
    client = client_for(a.manager)
    url = f"/api/v1/orgs/{a.slug}/audit-events/"

    def ids(**params: str) -> set[int]:
        response = client.get(url, params)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    everything = ids()
    assert {old.pk, recent.pk, other.pk} <= everything
    assert not AuditEvent.objects.for_org(b.organization).filter(pk__in=everything).exists()
    assert ids(actor=a.admin.email, action="member.") == {recent.pk}
    assert ids(action="apikey") >= {other.pk}
    assert old.pk not in ids(action="apikey")
    window = ids(since=(now - timedelta(days=11)).isoformat(), until=(now - timedelta(days=9)).isoformat())
    assert window == {old.pk}
    assert ids(actor=a.owner.email, until=(now - timedelta(days=1)).isoformat()) == {old.pk}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-13-45"}, "until"),
        ({"actor": "not an email"}, "actor"),
        ({"since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, "until"),
    ],
)
def test_bad_audit_filter_is_400_with_the_field(params, field, tenant_a, client_for):
    """A malformed filter is a 400 naming the field, not a 500 or a silently ignored filter."""
    response = client_for(tenant_a.manager).get(f"/api/v1/orgs/{tenant_a.slug}/audit-events/", params)
    assert response.status_code == 400
    assert field in response.json()
