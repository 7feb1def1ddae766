import pytest

from accounts.errors import InvalidInput
from accounts.models import ApiKey
from accounts.object_permissions import (
    object_grant,
    object_has_permission,
    object_revoke,
    objects_with_permission,
)
from accounts.services.api_keys import api_key_create


@pytest.fixture
def keys(tenants):
    a, b = tenants
    key_a = api_key_create(organization=a.organization, actor=a.owner, name="a", scopes=["tasks:read"]).api_key
    key_a2 = api_key_create(organization=a.organization, actor=a.owner, name="a2", scopes=["tasks:read"]).api_key
    key_b = api_key_create(organization=b.organization, actor=b.owner, name="b", scopes=["tasks:read"]).api_key
    return key_a, key_a2, key_b


def test_grant_applies_to_one_object_only(tenants, keys):
    """A per-object grant covers that object and no other of the same organization."""
    a, _ = tenants
    key_a, key_a2, _ = keys
    object_grant(user=a.viewer, permission="view_apikey", obj=key_a)
    assert object_has_permission(user=a.viewer, permission="view_apikey", obj=key_a)
    assert not object_has_permission(user=a.viewer, permission="view_apikey", obj=key_a2)
    granted = objects_with_permission(user=a.viewer, permission="view_apikey",
                                      queryset=ApiKey.objects.for_org(a.organization))
    assert list(granted) == [key_a]
    object_revoke(user=a.viewer, permission="view_apikey", obj=key_a)
    assert not object_has_permission(user=a.viewer, permission="view_apikey", obj=key_a)


def test_grant_to_another_organizations_user_is_refused(tenants, keys):
    """An object of organization A cannot be granted to a user of organization B."""
    _, b = tenants
    key_a, _, _ = keys
    with pytest.raises(InvalidInput):
        object_grant(user=b.owner, permission="view_apikey", obj=key_a)
    assert not object_has_permission(user=b.owner, permission="view_apikey", obj=key_a)
