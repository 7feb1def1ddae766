from __future__ import annotations

import re

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.test import RequestFactory

from accounts import tenancy
from accounts.models import ApiKey, Invitation
from accounts.page_access import org_page
from accounts.roles import Role, Scope


def _csrf_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_posts_without_a_csrf_token_are_refused(tenant_a, page_for):
    """With CSRF checks on, forms posted without the token are refused and change nothing."""
    client = page_for(tenant_a.owner, enforce_csrf_checks=True)
    slug = tenant_a.slug
    assert client.post(f"/orgs/{slug}/members/invite/", {"email": "x@example.test", "role": 10}).status_code == 403
    assert client.post(f"/orgs/{slug}/api-keys/", {"name": "x", "scopes": ["org:read"]}).status_code == 403
    assert client.post("/orgs/switch/", {"organization": slug}).status_code == 403
    assert client.post("/logout/").status_code == 403
    assert not Invitation.objects.for_org(tenant_a.organization).exists()
    assert not ApiKey.objects.for_org(tenant_a.organization).exists()


def test_posts_with_the_pages_csrf_token_work(tenant_a, page_for):
    """The token embedded in the page makes the same post succeed."""
    client = page_for(tenant_a.owner, enforce_csrf_checks=True)
    token = _csrf_token(client.get(f"/orgs/{tenant_a.slug}/members/").content.decode())
    response = client.post(
        f"/orgs/{tenant_a.slug}/members/invite/",
        {"email": "x@example.test", "role": Role.VIEWER, "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 200
    assert Invitation.objects.for_org(tenant_a.organization).count() == 1


def test_login_form_is_csrf_protected(tenant_a, client):
    """The login form needs its CSRF token too."""
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/login/", {"username": tenant_a.owner.email, "password": "x"}).status_code == 403


# --- The page-access helper ------------------------------------------------------------------


@org_page(Scope.MEMBERS_READ, unsafe_scope=Scope.MEMBERS_MANAGE)
def _probe(request, access):
    return HttpResponse(f"{access.organization.slug}:{tenancy.current_organization().slug}:{access.role.label}")


def _request(method, user):
    request = getattr(RequestFactory(), method)("/probe/")
    request.user = user
    request.session = {}
    return request


def test_org_page_resolves_membership_and_scopes_the_view(tenant_a):
    """The helper hands the view the organization and membership and runs it in that organization's scope."""
    request = _request("get", tenant_a.viewer)
    response = _probe(request, org_slug=tenant_a.slug)
    assert response.content == b"acme:acme:Viewer"
    assert request.session["current_org"] == "acme"
    assert tenancy.current_organization() is None


def test_org_page_is_404_for_foreign_and_unknown_slugs_and_403_without_scope(tenants):
    """Non-members get the same 404 as an unknown slug; a missing scope for a POST is 403."""
    a, b = tenants
    for slug in (b.slug, "no-such-org"):
        with pytest.raises(Http404):
            _probe(_request("get", a.owner), org_slug=slug)
    with pytest.raises(PermissionDenied):
        _probe(_request("post", a.viewer), org_slug=a.slug)
    assert _probe(_request("post", a.admin), org_slug=a.slug).status_code == 200
