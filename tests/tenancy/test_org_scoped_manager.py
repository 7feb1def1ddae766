"""The default manager of every organization-owned model fails closed."""

from __future__ import annotations

import pytest
from django.apps import apps

from accounts.models import ApiKey, Membership
from accounts.tenancy import (
    OrganizationOwned,
    OrganizationScopeRequired,
    OrgScopedManager,
    current_organization,
    org_scope,
    with_org_scope,
)
from tests.accounts.factories import make_api_key


def org_owned_models() -> list[type]:
    return [m for m in apps.get_models() if issubclass(m, OrganizationOwned) and not m._meta.abstract]


ORG_OWNED = org_owned_models()


def test_org_owned_models_are_found():
    """The check below covers the accounts models (and any app's that subclass OrganizationOwned)."""
    assert {Membership, ApiKey} <= set(ORG_OWNED)


@pytest.mark.parametrize("model", [pytest.param(m, id=m._meta.label) for m in ORG_OWNED])
def test_default_manager_is_org_scoped_and_refuses_unscoped_queries(model):
    """Every concrete OrganizationOwned model keeps OrgScopedManager as default manager, and it raises unscoped."""
    assert isinstance(model._default_manager, OrgScopedManager), (
        f"{model._meta.label}: the default manager is {type(model._default_manager).__name__}; "
        "declare no manager before `objects = OrgScopedManager()` (or a subclass)"
    )
    assert isinstance(model.objects, OrgScopedManager)
    with pytest.raises(OrganizationScopeRequired):
        model._default_manager.all()
    with pytest.raises(OrganizationScopeRequired):
        model._default_manager.filter(pk=1)
    with pytest.raises(OrganizationScopeRequired):
        model._default_manager.count()


@pytest.mark.parametrize("model", [pytest.param(m, id=m._meta.label) for m in ORG_OWNED])
def test_org_scoped_field_is_the_organization(model):
    """Every organization-owned model carries a non-null organization foreign key."""
    field = model._meta.get_field("organization")
    assert field.related_model._meta.label == "accounts.Organization"
    assert not field.null


def test_for_org_and_org_scope_see_only_that_organization(tenants):
    """for_org(org) and `with org_scope(org)` return that organization's rows only."""
    a, b = tenants
    a_ids = set(Membership.objects.for_org(a.organization).values_list("pk", flat=True))
    b_ids = set(Membership.objects.for_org(b.organization).values_list("pk", flat=True))
    assert len(a_ids) == 5
    assert len(b_ids) == 5
    assert not a_ids & b_ids
    with org_scope(b.organization):
        assert set(Membership.objects.values_list("pk", flat=True)) == b_ids
        assert not Membership.objects.filter(pk__in=a_ids).exists()
    assert set(Membership.objects.dangerously_unscoped().values_list("pk", flat=True)) >= a_ids | b_ids


def test_scope_ends_with_the_block(tenant_a):
    """Leaving `org_scope` (even by an exception) restores the fail-closed state."""
    def fail_inside() -> None:
        with org_scope(tenant_a.organization):
            assert current_organization() == tenant_a.organization
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fail_inside()
    assert current_organization() is None
    with pytest.raises(OrganizationScopeRequired):
        Membership.objects.count()


def test_unsaved_or_missing_organization_is_refused(tenant_a):
    """for_org() and org_scope() need a saved organization."""
    from accounts.models import Organization

    with pytest.raises(OrganizationScopeRequired):
        Membership.objects.for_org(None)
    with pytest.raises(OrganizationScopeRequired):
        Membership.objects.for_org(Organization(slug="unsaved", name="Unsaved"))
    with pytest.raises(OrganizationScopeRequired), org_scope(None):
        pass


def test_related_managers_fail_closed(tenant_a):
    """Reverse relations to organization-owned rows go through the scoped manager too."""
    with pytest.raises(OrganizationScopeRequired):
        list(tenant_a.owner.memberships.all())
    with org_scope(tenant_a.organization):
        assert tenant_a.owner.memberships.count() == 1


def test_with_org_scope_loads_the_organization(tenants):
    """@with_org_scope puts organization_id's organization in scope, and refuses a call without it."""
    a, b = tenants
    make_api_key(b.organization, b.owner)

    @with_org_scope
    def count_keys(*, organization_id: int) -> int:
        return ApiKey.objects.count()

    assert count_keys(organization_id=a.organization.pk) == 0
    assert count_keys(organization_id=b.organization.pk) == 1
    assert current_organization() is None
    with pytest.raises(OrganizationScopeRequired):
        count_keys()
