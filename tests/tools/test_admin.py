"""The admin lists tool calls and credentials across organizations without exposing a secret."""

from __future__ import annotations

import pytest

from tests.factories import UserFactory
from tools.services.credentials import credential_create
from tools.services.invocation import invoke_tool

pytestmark = pytest.mark.django_db

TOKEN = "ghp_admin_view_token_0123456789"


def test_admin_pages_show_no_secret(tenant_a, client):
    """Staff see tool calls and credentials (hint only), read-only."""
    staff = UserFactory(email="staff@staffer.test", is_staff=True, is_superuser=True)
    credential = credential_create(organization=tenant_a.organization, actor=tenant_a.admin, provider="github",
                                   secret={"token": TOKEN})
    invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="files_list", arguments={})
    client.force_login(staff)
    calls = client.get("/admin/tools/toolcall/")
    assert calls.status_code == 200
    assert b"files_list" in calls.content
    page = client.get(f"/admin/tools/integrationcredential/{credential.pk}/change/")
    assert page.status_code == 200
    assert TOKEN.encode() not in page.content
    assert b"ciphertext" not in page.content
    assert client.get("/admin/tools/toolcall/add/").status_code == 403
