"""slack_post_message against a local stand-in following Slack's incoming-webhook contract."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent, Membership
from tools.models import ToolCall
from tools.selectors import tools_available_to
from tools.services.invocation import invoke_tool
from tools.types import Outcome

from .support.providers import SLACK_PATH

pytestmark = pytest.mark.django_db


def _post(tenant, **arguments):
    return invoke_tool(organization=tenant.organization, actor=tenant.member, tool_name="slack_post_message",
                       arguments=arguments)


def test_message_posted_and_webhook_secret_never_recorded(tenant_a, credentials):
    """The message reaches the webhook; the webhook URL (a secret) is in no ToolCall or audit event."""
    result = _post(tenant_a, text="Maria starts Monday :tada:")
    assert result.ok, result.reason
    assert result.result == {"delivered": True, "status": 200}
    assert credentials.slack_messages == [{"text": "Maria starts Monday :tada:"}]
    secret = SLACK_PATH.rsplit("/", 1)[-1]
    for call in ToolCall.objects.for_org(tenant_a.organization):
        assert secret not in str(call.arguments) + str(call.result) + call.reason
    for event in AuditEvent.objects.for_org(tenant_a.organization):
        assert secret not in str(event.after) + str(event.before)


def test_slack_error_is_a_clear_refusal(tenant_a, credentials):
    """Slack's plain-text error (e.g. channel_not_found) becomes the refusal reason, without the secret."""
    credentials.fail_next["slack"] = (404, "channel_not_found")
    result = _post(tenant_a, text="hi")
    assert result.outcome == Outcome.REFUSED
    assert result.code == "provider_rejected"
    assert "channel_not_found" in result.reason
    assert "XXXXSECRET" not in result.reason


def test_not_configured_is_hidden_and_refused(tenant_a, providers):
    """Without a Slack credential the tool is not offered and a call is refused."""
    membership = Membership.objects.for_org(tenant_a.organization).get(user=tenant_a.member)
    assert "slack_post_message" not in {t.name for t in tools_available_to(membership)}
    assert _post(tenant_a, text="hi").code == "not_configured"


def test_webhook_outside_configured_base_is_refused(tenant_a, providers, settings):
    """A stored webhook URL that does not sit under the configured Slack address is not called."""
    from tools.services.credentials import credential_create

    credential_create(organization=tenant_a.organization, actor=tenant_a.admin, provider="slack",
                      secret={"webhook_url": "http://169.254.169.254/latest/meta-data/"})
    result = _post(tenant_a, text="hi")
    assert result.code == "credential_invalid"
    assert providers.requests == []
