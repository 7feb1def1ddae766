"""The tools API: tools, invoking, calls, settings, credentials, budgets, downloads; organization isolation."""

from __future__ import annotations

import pytest
from django.core import mail

from accounts.models import ApprovalRequest
from tests.accounts.factories import key_header, make_api_key
from tools.models import IntegrationCredential, ToolCall
from tools.services.credentials import credential_create
from tools.services.invocation import invoke_tool
from tools.storage import OrgStorage

pytestmark = pytest.mark.django_db

SECRET = "ghp_api_test_token_0123456789abcdef"


def url(tenant, rest):
    return f"/api/v1/orgs/{tenant.slug}/{rest}"


def test_tool_list_follows_role(tenant_a, client_for):
    """A viewer is shown read tools only; an owner sees write tools too; nobody sees unconfigured integrations."""
    viewer = {t["name"] for t in client_for(tenant_a.viewer).get(url(tenant_a, "tools/")).json()}
    owner = {t["name"] for t in client_for(tenant_a.owner).get(url(tenant_a, "tools/")).json()}
    assert "files_read" in viewer
    assert "files_write" not in viewer
    assert {"files_write", "email_send", "documents_generate", "run_command"} <= owner
    assert "slack_post_message" not in owner
    detail = client_for(tenant_a.member).get(url(tenant_a, "tools/email_send/")).json()
    assert detail["approval"]["outside_domains"] is True
    assert detail["parameters"]["required"] == ["to", "subject", "body"]
    assert client_for(tenant_a.viewer).get(url(tenant_a, "tools/email_send/")).status_code == 404


def test_invoke_success_and_replay(tenant_a, client_for):
    """Invoking returns the result; the same key again returns the stored call without acting twice."""
    client = client_for(tenant_a.member)
    body = {"arguments": {"to": ["dana@acme.test"], "subject": "Hi", "body": "Hello"}, "idempotency_key": "m1"}
    first = client.post(url(tenant_a, "tools/email_send/invoke/"), body)
    assert first.status_code == 200, first.content
    assert first.json()["outcome"] == "succeeded"
    second = client.post(url(tenant_a, "tools/email_send/invoke/"), body)
    assert second.status_code == 200
    assert second.json()["replayed"] is True
    assert second.json()["tool_call"] == first.json()["tool_call"]
    assert len(mail.outbox) == 1


def test_invoke_bad_arguments_is_400_with_fields(tenant_a, client_for):
    """Arguments that miss the schema give 400 naming the fields; a non-object gives 400 too."""
    client = client_for(tenant_a.member)
    response = client.post(url(tenant_a, "tools/email_send/invoke/"), {"arguments": {"to": ["dana@acme.test"]}})
    assert response.status_code == 400
    assert set(response.json()["errors"]) >= {"subject", "body"}
    response = client.post(url(tenant_a, "tools/email_send/invoke/"), {"arguments": [1, 2]})
    assert response.status_code == 400
    assert "arguments" in response.json()


def test_invoke_statuses(tenant_a, client_for):
    """Forbidden is 403, needs approval 202 (with the approval id), unknown tool 404, SSRF 422."""
    viewer = client_for(tenant_a.viewer)
    forbidden = viewer.post(url(tenant_a, "tools/files_write/invoke/"), {"arguments": {"path": "a", "text": "x"}})
    assert forbidden.status_code == 403
    member = client_for(tenant_a.member)
    waiting = member.post(url(tenant_a, "tools/email_send/invoke/"),
                          {"arguments": {"to": ["x@other.example"], "subject": "s", "body": "b"}})
    assert waiting.status_code == 202
    assert ApprovalRequest.objects.for_org(tenant_a.organization).filter(pk=waiting.json()["approval"]).exists()
    assert member.post(url(tenant_a, "tools/nope/invoke/"), {"arguments": {}}).status_code == 404
    ssrf = member.post(url(tenant_a, "tools/http_request/invoke/"),
                       {"arguments": {"url": "http://169.254.169.254/latest/meta-data/"}})
    assert ssrf.status_code == 422
    assert ssrf.json()["code"] == "ssrf_refused"


def test_api_key_scopes_limit_tools(tenant_a, client_for, api):
    """A key with only tools:read cannot write files even though its owner could."""
    _key, secret = make_api_key(tenant_a.organization, tenant_a.owner, scopes=["tools:read"])
    response = api.post(url(tenant_a, "tools/files_write/invoke/"), {"arguments": {"path": "k.txt", "text": "x"}},
                        format="json", **key_header(secret))
    assert response.status_code == 403
    listing = api.get(url(tenant_a, "tools/"), **key_header(secret)).json()
    assert "files_write" not in {t["name"] for t in listing}


def test_tool_calls_own_or_all(tenant_a, client_for):
    """A member lists only their own calls; a manager (audit reader) lists everyone's."""
    invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="files_list", arguments={})
    invoke_tool(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="files_list", arguments={})
    mine = client_for(tenant_a.member).get(url(tenant_a, "tool-calls/")).json()["results"]
    assert {c["actor"] for c in mine} == {tenant_a.member.email}
    everyone = client_for(tenant_a.manager).get(url(tenant_a, "tool-calls/?tool=files_list")).json()["results"]
    assert len(everyone) == 2


def test_credentials_never_return_the_secret(tenant_a, client_for):
    """Creating, listing, retrieving and rotating never echo the secret; viewers and members cannot manage them."""
    admin = client_for(tenant_a.admin)
    created = admin.post(url(tenant_a, "credentials/"), {"provider": "github", "secret": {"token": SECRET}})
    assert created.status_code == 201, created.content
    assert SECRET not in created.content.decode()
    assert created.json()["hint"] == "…cdef"
    pk = created.json()["id"]
    assert SECRET not in admin.get(url(tenant_a, "credentials/")).content.decode()
    assert SECRET not in admin.get(url(tenant_a, f"credentials/{pk}/")).content.decode()
    rotated = admin.post(url(tenant_a, f"credentials/{pk}/rotate/"), {"secret": {"token": SECRET + "X"}})
    assert rotated.status_code == 200
    assert rotated.json()["rotated_at"] is not None
    assert client_for(tenant_a.member).get(url(tenant_a, "credentials/")).status_code == 403
    bad = admin.post(url(tenant_a, "credentials/"), {"provider": "bamboohr", "secret": {"api_key": "k"}})
    assert bad.status_code == 400
    assert "secret" in bad.json()
    assert admin.delete(url(tenant_a, f"credentials/{pk}/")).status_code == 204
    assert not IntegrationCredential.objects.for_org(tenant_a.organization).exists()


def test_settings_change_and_validation(tenant_a, client_for):
    """An admin turns a tool off and sets its policy; bad values are 400 with the field."""
    admin = client_for(tenant_a.admin)
    response = admin.patch(url(tenant_a, "tool-settings/files_write/"),
                           {"enabled": False, "min_role": "manager", "approval": {"always": True}})
    assert response.status_code == 200, response.content
    assert response.json()["effective_approval"]["always"] is True
    listed = {t["name"] for t in client_for(tenant_a.owner).get(url(tenant_a, "tools/")).json()}
    assert "files_write" not in listed
    assert admin.patch(url(tenant_a, "tool-settings/files_write/"), {"min_role": "boss"}).status_code == 400
    bad = admin.patch(url(tenant_a, "tool-settings/files_write/"), {"approval": {"amount_over": -5}})
    assert bad.status_code == 400
    assert "approval" in bad.json()
    bad_config = admin.patch(url(tenant_a, "tool-settings/http_request/"), {"config": {"allowed_ports": ["x"]}})
    assert bad_config.status_code == 400
    assert admin.patch(url(tenant_a, "tool-settings/nope/"), {"enabled": True}).status_code == 404
    assert client_for(tenant_a.manager).patch(url(tenant_a, "tool-settings/files_write/"),
                                              {"enabled": True}).status_code == 403


def test_budgets_and_transactions_need_financial_scope(tenant_a, client_for):
    """Only admins and owners see and set payment budgets."""
    admin = client_for(tenant_a.admin)
    response = admin.post(url(tenant_a, "payment-budgets/"),
                          {"currency": "usd", "per_action_limit": 1000, "daily_limit": None, "monthly_limit": 50000})
    assert response.status_code == 200, response.content
    assert response.json()["currency"] == "USD"
    negative = {"currency": "usd", "per_action_limit": -1, "daily_limit": None, "monthly_limit": None}
    assert admin.post(url(tenant_a, "payment-budgets/"), negative).status_code == 400
    assert client_for(tenant_a.manager).get(url(tenant_a, "payment-budgets/")).status_code == 403
    assert admin.get(url(tenant_a, "payment-transactions/")).status_code == 200


def test_download_link(tenant_a, tenant_b, client_for):
    """The link a document returns downloads it; escapes are 400; another organization's file is 404."""
    result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="documents_generate",
                         arguments={"format": "pdf", "filename": "report", "content": {"title": "T", "paragraphs": []}})
    response = client_for(tenant_a.viewer).get(result.result["download_url"])
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF")
    assert "attachment" in response["Content-Disposition"]
    assert client_for(tenant_a.viewer).get(url(tenant_a, "files/download/?path=../x")).status_code == 400
    OrgStorage(tenant_b.organization.pk).write("b-only.txt", b"B")
    assert client_for(tenant_a.viewer).get(url(tenant_a, "files/download/?path=b-only.txt")).status_code == 404


def test_cross_org_invoke_and_ids(tenants, client_for):
    """A member of A cannot list B's tools, invoke in B, or read B's calls and credentials: 404, nothing written."""
    a, b = tenants
    credential = credential_create(organization=b.organization, actor=b.admin, provider="github",
                                   secret={"token": SECRET})
    call = invoke_tool(organization=b.organization, actor=b.member, tool_name="files_list", arguments={}).tool_call
    client = client_for(a.owner)
    before = ToolCall.objects.dangerously_unscoped().count()
    assert client.get(url(b, "tools/")).status_code == 404
    assert client.post(url(b, "tools/files_write/invoke/"),
                       {"arguments": {"path": "x.txt", "text": "x"}}).status_code == 404
    assert client.get(url(a, f"tool-calls/{call.pk}/")).status_code == 404
    assert client.get(url(a, f"credentials/{credential.pk}/")).status_code == 404
    assert client.post(url(a, f"credentials/{credential.pk}/rotate/"),
                       {"secret": {"token": "ghp_hijack_0123456789"}}).status_code == 404
    assert ToolCall.objects.dangerously_unscoped().count() == before
    assert not OrgStorage(b.organization.pk).exists("x.txt")
