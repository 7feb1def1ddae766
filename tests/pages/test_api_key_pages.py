from __future__ import annotations

from accounts.models import ApiKey
from accounts.roles import Scope
from accounts.services.api_keys import api_key_authenticate, api_key_create
from accounts.services.tokens import hash_secret


def _keys(tenant):
    return ApiKey.objects.for_org(tenant.organization)


def test_secret_is_shown_once_and_never_again(tenant_a, page_for):
    """Creating a key shows its secret on the next page only; the list and later pages never show it."""
    client = page_for(tenant_a.admin)
    response = client.post(
        f"/orgs/{tenant_a.slug}/api-keys/", {"name": "CI", "scopes": [Scope.TASKS_READ, Scope.TASKS_WRITE]}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = _keys(tenant_a).get()
    html = response.content.decode()
    start = html.index('id="api-key-secret"')
    secret = html[start:].split('value="', 1)[1].split('"', 1)[0]
    assert secret.startswith(f"stf_{key.prefix}_")
    assert key.key_hash == hash_secret(secret)
    assert key.scopes == [Scope.TASKS_READ, Scope.TASKS_WRITE]
    assert api_key_authenticate(secret) == key
    # Never again: not on the list, not in the session.
    listing = client.get(f"/orgs/{tenant_a.slug}/api-keys/")
    assert secret not in listing.content.decode()
    assert secret not in str(dict(client.session))
    assert f"stf_{key.prefix}" in listing.content.decode()


def test_list_shows_prefix_scopes_and_last_use(tenant_a, page_for, django_assert_max_num_queries):
    """The list shows each key's name, prefix, scopes and when it was last used."""
    issued = api_key_create(
        organization=tenant_a.organization, actor=tenant_a.owner, name="Reporting", scopes=[Scope.USAGE_READ]
    )
    for n in range(5):
        api_key_create(organization=tenant_a.organization, actor=tenant_a.admin, name=f"k{n}", scopes=["org:read"])
    client = page_for(tenant_a.owner)
    client.get(f"/orgs/{tenant_a.slug}/api-keys/")
    with django_assert_max_num_queries(7):  # no query per key
        html = client.get(f"/orgs/{tenant_a.slug}/api-keys/").content.decode()
    assert "Reporting" in html
    assert f"stf_{issued.api_key.prefix}" in html
    assert "usage:read" in html
    row = html[html.index("Reporting"):].split("</tr>", 1)[0]
    assert "Never" in row
    api_key_authenticate(issued.secret)
    html = client.get(f"/orgs/{tenant_a.slug}/api-keys/").content.decode()
    row = html[html.index("Reporting"):].split("</tr>", 1)[0]
    assert "Never" not in row


def test_scope_choices_are_the_creators_own(tenant_a, page_for):
    """The form offers only the creator's scopes; a forged scope or none at all is a form error."""
    client = page_for(tenant_a.admin)
    html = client.get(f"/orgs/{tenant_a.slug}/api-keys/").content.decode()
    assert 'value="members:manage"' in html
    response = client.post(f"/orgs/{tenant_a.slug}/api-keys/", {"name": "x", "scopes": ["root:everything"]})
    assert response.status_code == 400
    assert b"Select a valid choice" in response.content
    response = client.post(f"/orgs/{tenant_a.slug}/api-keys/", {"name": "x"})
    assert response.status_code == 400
    assert b"This field is required" in response.content
    response = client.post(f"/orgs/{tenant_a.slug}/api-keys/", {"name": "   ", "scopes": [Scope.ORG_READ]})
    assert response.status_code == 400
    assert not _keys(tenant_a).exists()


def test_roles_without_apikeys_manage_cannot_use_the_page(tenant_a, page_for):
    """A manager (no apikeys:manage) is refused the page and the create and revoke requests."""
    issued = api_key_create(organization=tenant_a.organization, actor=tenant_a.owner, name="k", scopes=["org:read"])
    client = page_for(tenant_a.manager)
    assert client.get(f"/orgs/{tenant_a.slug}/api-keys/").status_code == 403
    assert client.post(f"/orgs/{tenant_a.slug}/api-keys/", {"name": "x", "scopes": ["org:read"]}).status_code == 403
    assert client.post(f"/orgs/{tenant_a.slug}/api-keys/{issued.api_key.pk}/revoke/").status_code == 403
    assert _keys(tenant_a).count() == 1
    assert _keys(tenant_a).get().revoked_at is None


def test_revoke_stops_the_key(tenant_a, page_for):
    """Revoking a key marks it revoked on the list and the secret stops working."""
    issued = api_key_create(organization=tenant_a.organization, actor=tenant_a.owner, name="k", scopes=["org:read"])
    client = page_for(tenant_a.admin)
    response = client.post(f"/orgs/{tenant_a.slug}/api-keys/{issued.api_key.pk}/revoke/", follow=True)
    assert response.status_code == 200
    assert b"Revoked" in response.content
    assert api_key_authenticate(issued.secret) is None


def test_other_organizations_keys_are_404_and_untouched(tenants, page_for):
    """Revoking another organization's key (by its slug or through one's own) is 404 and leaves it active."""
    a, b = tenants
    issued = api_key_create(organization=b.organization, actor=b.owner, name="theirs", scopes=["org:read"])
    client = page_for(a.owner)
    assert client.post(f"/orgs/{b.slug}/api-keys/{issued.api_key.pk}/revoke/").status_code == 404
    assert client.post(f"/orgs/{a.slug}/api-keys/{issued.api_key.pk}/revoke/").status_code == 404
    assert client.post(f"/orgs/{b.slug}/api-keys/", {"name": "x", "scopes": ["org:read"]}).status_code == 404
    assert "theirs" not in client.get(f"/orgs/{a.slug}/api-keys/").content.decode()
    assert api_key_authenticate(issued.secret) is not None
    assert _keys(b).count() == 1
