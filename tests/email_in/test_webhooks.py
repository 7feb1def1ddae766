"""Providers' inbound webhooks (django-anymail): a payload of each provider, their authentication, bad payloads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError

from automation.email_in import processing
from automation.email_in.processing import spool_process
from automation.email_in.spool import Spool
from automation.models import InboundAttachment, InboundMessage, Task
from tests.email_in.conftest import org_address

pytestmark = pytest.mark.django_db

MAILGUN = "/api/v1/hooks/email/mailgun/inbound/"
SENDGRID = "/api/v1/hooks/email/sendgrid/inbound/"
POSTMARK = "/api/v1/hooks/email/postmark/inbound/"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"hook:s3cret").decode()}
PDF = b"%PDF-1.4\n%%EOF\n"


def mailgun_payload(*, sender: str, to: str, subject: str = "Book the venue", message_id: str = "<mg-1@client.test>",
                    extra_headers: list[list[str]] = (), key: str = "mailgun-signing-key") -> dict:
    timestamp, token = str(int(time.time())), "a" * 50
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    headers = [["From", sender], ["To", to], ["Subject", subject], ["Message-Id", message_id], *extra_headers]
    return {
        "recipient": to, "sender": sender, "from": sender, "subject": subject,
        "body-plain": "Please book the venue, due 2026-12-05.", "stripped-text": "Please book the venue.",
        "message-headers": json.dumps(headers), "timestamp": timestamp, "token": token, "signature": signature,
        "attachment-count": "1", "attachment-1": SimpleUploadedFile("floorplan.pdf", PDF, "application/pdf"),
    }


def sendgrid_payload(*, sender: str, to: str, subject: str = "Renew insurance", spf: str = "pass",
                     dkim: str = "{@client.test : pass}", message_id: str = "<sg-1@client.test>") -> dict:
    headers = f"From: {sender}\nTo: {to}\nSubject: {subject}\nMessage-ID: {message_id}\n"
    return {
        "headers": headers, "text": "Renew the office insurance by Friday.", "from": sender, "to": to,
        "subject": subject, "envelope": json.dumps({"from": sender, "to": [to]}), "SPF": spf, "dkim": dkim,
        "charsets": json.dumps({"text": "utf-8", "subject": "utf-8", "from": "utf-8", "to": "utf-8"}),
    }


def postmark_payload(*, sender: str, to: str, subject: str = "Plan the offsite",
                     message_id: str = "<pm-1@client.test>", extra_headers: list[dict] = ()) -> dict:
    return {
        "FromFull": {"Email": sender, "Name": "Sender"}, "ToFull": [{"Email": to, "Name": ""}],
        "OriginalRecipient": to, "Subject": subject, "TextBody": "Plan the offsite, high priority.",
        "HtmlBody": "<p>Plan the <b>offsite</b>, high priority.</p>",
        "Headers": [{"Name": "Message-ID", "Value": message_id}, *extra_headers],
        "Attachments": [{"Name": "agenda.txt", "Content": base64.b64encode(b"9:00 start").decode(),
                         "ContentType": "text/plain", "ContentLength": 10}],
        "MessageID": "postmark-uuid-1",
    }


def _task(org):
    return Task.objects.for_org(org).get()


def test_mailgun_signed_payload_creates_a_task(tenant_a, client):
    """A signed Mailgun inbound call (fully parsed, with a file) becomes a task with its attachment."""
    response = client.post(MAILGUN, mailgun_payload(sender=tenant_a.member.email, to=org_address("acme")), **AUTH)
    assert response.status_code == 200, response.content
    task = _task(tenant_a.organization)
    assert (task.title, task.source) == ("Book the venue", "email")
    assert task.due_at.date().isoformat() == "2026-12-05"
    inbound = InboundMessage.objects.for_org(tenant_a.organization).get()
    assert (inbound.channel, inbound.message_id, inbound.status) == ("mailgun", "<mg-1@client.test>", "task_created")
    assert InboundAttachment.objects.for_org(tenant_a.organization).get().filename == "floorplan.pdf"


def test_mailgun_bad_signature_is_401_and_changes_nothing(tenant_a, client):
    """A Mailgun call signed with another key (or without the basic auth) is refused with 401; nothing is stored."""
    payload = mailgun_payload(sender=tenant_a.member.email, to=org_address("acme"), key="wrong-key")
    response = client.post(MAILGUN, payload, **AUTH)
    assert response.status_code == 401
    assert response.json()["code"] == "bad_signature"
    good = mailgun_payload(sender=tenant_a.member.email, to=org_address("acme"))
    assert client.post(MAILGUN, good).status_code == 401
    assert not InboundMessage.objects.for_org(tenant_a.organization).exists()


def test_mailgun_bad_payload_is_400(tenant_a, client):
    """A signed Mailgun call without its message fields is a 400 naming the problem, not a 500."""
    payload = mailgun_payload(sender=tenant_a.member.email, to=org_address("acme"))
    del payload["message-headers"]
    response = client.post(MAILGUN, payload, **AUTH)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_payload"


def test_mailgun_spf_failure_is_quarantined(tenant_a, client):
    """Mailgun's SPF verdict "Fail" quarantines the message (accepted, 200)."""
    payload = mailgun_payload(sender=tenant_a.member.email, to=org_address("acme"),
                              extra_headers=[["X-Mailgun-Spf", "Fail"]])
    assert client.post(MAILGUN, payload, **AUTH).status_code == 200
    held = InboundMessage.objects.for_org(tenant_a.organization).get()
    assert (held.status, held.reason, held.reason_detail) == ("quarantined", "auth_failed", "spf=fail")
    assert not Task.objects.for_org(tenant_a.organization).exists()


def test_sendgrid_payload_creates_a_task(tenant_a, client):
    """A SendGrid inbound parse call with basic auth becomes a task; the envelope names the organization."""
    response = client.post(SENDGRID, sendgrid_payload(sender=tenant_a.member.email, to=org_address("acme")), **AUTH)
    assert response.status_code == 200, response.content
    task = _task(tenant_a.organization)
    assert task.title == "Renew insurance"
    assert InboundMessage.objects.for_org(tenant_a.organization).get().channel == "sendgrid"


def test_sendgrid_dkim_failure_is_quarantined_and_no_auth_is_401(tenant_a, client):
    """SendGrid's DKIM verdict "fail" quarantines; a call without the webhook secret is refused with 401."""
    payload = sendgrid_payload(sender=tenant_a.member.email, to=org_address("acme"), dkim="{@client.test : fail}")
    assert client.post(SENDGRID, payload).status_code == 401
    assert not InboundMessage.objects.for_org(tenant_a.organization).exists()
    assert client.post(SENDGRID, payload, **AUTH).status_code == 200
    held = InboundMessage.objects.for_org(tenant_a.organization).get()
    assert (held.status, held.reason) == ("quarantined", "auth_failed")


def test_sendgrid_payload_without_message_is_400(tenant_a, client):
    """A SendGrid call with neither parsed headers nor raw MIME is a 400."""
    response = client.post(SENDGRID, {"subject": "nothing else"}, **AUTH)
    assert response.status_code == 400
    assert "SendGrid" in response.json()["detail"]


def test_postmark_payload_creates_a_task(tenant_a, client):
    """A Postmark inbound JSON call with basic auth becomes a task (HTML and text, attachment stored)."""
    body = postmark_payload(sender=tenant_a.member.email, to=org_address("acme"))
    response = client.post(POSTMARK, json.dumps(body), content_type="application/json", **AUTH)
    assert response.status_code == 200, response.content
    task = _task(tenant_a.organization)
    assert task.title == "Plan the offsite"
    assert task.priority == 75
    assert task.description == "Plan the offsite, high priority."
    assert InboundAttachment.objects.for_org(tenant_a.organization).get().filename == "agenda.txt"


def test_postmark_redelivery_creates_nothing_new(tenant_a, client):
    """The provider delivering the same message again gets 200 and no second task."""
    body = json.dumps(postmark_payload(sender=tenant_a.member.email, to=org_address("acme")))
    for _ in range(2):
        assert client.post(POSTMARK, body, content_type="application/json", **AUTH).status_code == 200
    assert Task.objects.for_org(tenant_a.organization).count() == 1


def test_postmark_spam_is_quarantined(tenant_a, client):
    """Postmark's spam flag (X-Spam-Status: Yes) quarantines the message."""
    body = postmark_payload(sender=tenant_a.member.email, to=org_address("acme"),
                            extra_headers=[{"Name": "X-Spam-Status", "Value": "Yes"}])
    assert client.post(POSTMARK, json.dumps(body), content_type="application/json", **AUTH).status_code == 200
    held = InboundMessage.objects.for_org(tenant_a.organization).get()
    assert (held.status, held.reason) == ("quarantined", "spam")


def test_postmark_bad_json_unknown_recipient_and_no_headers(tenant_a, client):
    """Broken JSON: 400. A recipient matching no organization: 406. A message without a From: 400."""
    response = client.post(POSTMARK, "{not json", content_type="application/json", **AUTH)
    assert response.status_code == 400
    body = postmark_payload(sender=tenant_a.member.email, to="tasks+nobody-here@inbound.test")
    response = client.post(POSTMARK, json.dumps(body), content_type="application/json", **AUTH)
    assert response.status_code == 406
    assert response.json()["code"] == "no_recipient"
    body = postmark_payload(sender="", to=org_address("acme"))
    body["FromFull"] = None
    response = client.post(POSTMARK, json.dumps(body), content_type="application/json", **AUTH)
    assert response.status_code == 400
    assert response.json()["code"] == "malformed"
    assert not InboundMessage.objects.for_org(tenant_a.organization).exists()


def test_webhooks_are_off_until_their_secret_is_set(tenant_a, client, settings):
    """Without a configured secret every provider's webhook answers 503 and accepts nothing."""
    settings.ANYMAIL = {}
    assert client.post(MAILGUN, mailgun_payload(sender=tenant_a.member.email, to=org_address("acme"))
                       ).status_code == 503
    assert client.post(SENDGRID, sendgrid_payload(sender=tenant_a.member.email, to=org_address("acme"))
                       ).status_code == 503
    assert client.post(POSTMARK, "{}", content_type="application/json").status_code == 503
    assert not InboundMessage.objects.for_org(tenant_a.organization).exists()


def test_webhook_during_database_outage_is_spooled_then_processed(tenant_a, client, monkeypatch):
    """If processing meets an unavailable database the call still succeeds and the message waits in the spool."""

    def down(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(processing, "inbound_receive", down)
    body = json.dumps(postmark_payload(sender=tenant_a.member.email, to=org_address("acme")))
    assert client.post(POSTMARK, body, content_type="application/json", **AUTH).status_code == 200
    assert Spool().count()["new"] == 1
    assert not Task.objects.for_org(tenant_a.organization).exists()
    monkeypatch.undo()
    assert spool_process().processed == 1
    assert _task(tenant_a.organization).title == "Plan the offsite"
