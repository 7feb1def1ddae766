"""email_send / email_draft: real SMTP delivery, attachments, approval outside the domain, idempotency."""

from __future__ import annotations

import base64

import pytest
from django.core import mail

from accounts.services.approvals import approval_decide
from tools.services.invocation import invoke_tool
from tools.storage import OrgStorage
from tools.types import Outcome

pytestmark = pytest.mark.django_db


def _send(tenant, user=None, key="", **arguments):
    base = {"to": ["dana@acme.test"], "subject": "Welcome", "body": "Hello Dana"}
    return invoke_tool(organization=tenant.organization, actor=user or tenant.member, tool_name="email_send",
                       arguments={**base, **arguments}, idempotency_key=key)


def test_internal_mail_goes_out_over_smtp_with_attachments(tenant_a, smtp_sink):
    """A message to a colleague is delivered by SMTP with a stored file and an inline attachment."""
    OrgStorage(tenant_a.organization.pk).write("hr/offer.pdf", b"%PDF-1.4 fake")
    inline = {"filename": "notes.txt", "content_base64": base64.b64encode(b"hi").decode()}
    result = _send(tenant_a, attachments=[{"path": "hr/offer.pdf"}, inline])
    assert result.ok, result.reason
    assert len(smtp_sink.envelopes) == 1
    envelope = smtp_sink.envelopes[0]
    assert envelope["rcpt"] == ["dana@acme.test"]
    message = smtp_sink.messages[0]
    assert message["Subject"] == "Welcome"
    assert message["From"] == "Acme Corp <staffer@staffer.test>"
    assert message["Reply-To"] == tenant_a.member.email
    assert message["Message-ID"].strip() == result.result["message_id"]
    names = [part.get_filename() for part in message.walk() if part.get_filename()]
    assert names == ["offer.pdf", "notes.txt"]
    assert result.result["attachments"] == ["offer.pdf", "notes.txt"]


def test_outside_recipient_waits_for_approval_then_sends_once(tenant_a, smtp_sink):
    """Mail to another domain is held for approval; once approved, retries deliver it exactly once."""
    asked = _send(tenant_a, key="welcome-maria", to=["maria.lopez@gmail.com"])
    assert asked.outcome == Outcome.NEEDS_APPROVAL
    assert "maria.lopez@gmail.com" in asked.reason
    assert smtp_sink.envelopes == []
    approval_decide(approval=asked.approval, actor=tenant_a.manager, approve=True)
    for _ in range(3):
        done = _send(tenant_a, key="welcome-maria", to=["maria.lopez@gmail.com"])
        assert done.ok
    assert len(smtp_sink.envelopes) == 1


def test_bcc_outside_also_needs_approval(tenant_a):
    """A hidden outside recipient counts as outside."""
    result = _send(tenant_a, bcc=["someone@other.example"])
    assert result.outcome == Outcome.NEEDS_APPROVAL
    assert mail.outbox == []


def test_header_injection_refused(tenant_a):
    """A subject or address carrying a line break is refused by the schema."""
    assert _send(tenant_a, subject="Hi\r\nBcc: victim@evil.example").code == "invalid_arguments"
    assert _send(tenant_a, to=["dana@acme.test\nBcc: x@evil.example"]).code == "invalid_arguments"
    assert mail.outbox == []


def test_smtp_failure_is_recorded(tenant_a, settings):
    """An unreachable mail server gives a failed call with a clear reason."""
    from tests.tools.support.smtp import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()
    result = _send(tenant_a)
    assert result.outcome == Outcome.FAILED
    assert result.code == "smtp_error"


def test_draft_shows_message_and_approval_need(tenant_a):
    """A draft sends nothing and says whether sending would need approval."""
    result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="email_draft",
                         arguments={"to": ["dana@acme.test", "x@other.example"], "subject": "S", "body": "B"})
    assert result.ok
    assert result.result["outside_recipients"] == ["x@other.example"]
    assert result.result["sending_needs_approval"] is True
    assert mail.outbox == []


def test_missing_attachment_fails_without_sending(tenant_a):
    """An attachment path that does not exist fails the call and nothing is sent."""
    result = _send(tenant_a, attachments=[{"path": "nope.pdf"}])
    assert result.outcome == Outcome.FAILED
    assert mail.outbox == []
