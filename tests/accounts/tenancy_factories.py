"""Rows of the accounts models for the cross-organization walker (see tests/tenancy/registry.py)."""

from __future__ import annotations

from accounts.models import ApiKey, AuditEvent, Invitation, Membership
from accounts.roles import Scope
from tests.accounts.factories import make_api_key, make_audit_event, make_invitation, make_member
from tests.tenancy.registry import register, register_payload


@register(Membership)
def _membership(tenant):
    return make_member(tenant.organization)


@register(Invitation)
def _invitation(tenant):
    return make_invitation(tenant.organization, tenant.owner, email=f"walker@{tenant.slug}.test")[0]


@register(ApiKey)
def _api_key(tenant):
    return make_api_key(tenant.organization, tenant.owner, scopes=[Scope.ORG_READ])[0]


@register(AuditEvent)
def _audit_event(tenant):
    return make_audit_event(tenant.organization, tenant.owner)


register_payload(None, "partial_update", lambda tenant: {"name": "Renamed by another organization"})
register_payload(Membership, "partial_update", lambda tenant: {"role": "viewer"})
register_payload(Invitation, "create", lambda tenant: {"email": "intruder@example.test", "role": "member"})
register_payload(ApiKey, "create", lambda tenant: {"name": "intruder", "scopes": [Scope.ORG_READ]})
