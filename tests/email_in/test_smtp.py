"""Real SMTP sessions over loopback (smtplib) against the built-in receiver running in a thread."""

from __future__ import annotations

import smtplib
import threading
from pathlib import Path

import psycopg
import pytest
from django.core import mail as django_mail
from django.db.backends.postgresql.base import DatabaseWrapper

from automation.email_in.smtp import Receiver
from automation.models import (
    InboundAttachment,
    InboundMessage,
    InboundStatus,
    Notification,
    Task,
    TaskEvent,
)
from tests.email_in.conftest import DOMAIN, SMTPSender, as_wire, make_mail, org_address

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _tasks(org):
    return Task.objects.for_org(org)


def _inbound(org):
    return InboundMessage.objects.for_org(org)


def test_new_task_from_a_member(tenant_a, smtp, spool):
    """A member's mail becomes a task: title, description, metadata with confidence, attachment stored, ack sent."""
    org = tenant_a.organization
    django_mail.outbox.clear()
    message = make_mail(sender=f"Mia Member <{tenant_a.member.email}>", to=org_address("acme"),
                        subject="Fwd: Order toner", body="Urgent: order toner, due 2026-12-01.\nThanks",
                        attachments=[("quote.pdf", PDF, "application/pdf")])
    refused = smtp.send(message, sender=tenant_a.member.email, to=[org_address("acme")])
    assert refused == {}
    task = _tasks(org).get()
    assert (task.title, task.source, task.execution_type) == ("Order toner", "email", "manual")
    assert task.description.startswith("Urgent: order toner")
    assert task.priority == 100
    assert task.due_at.date().isoformat() == "2026-12-01"
    assert task.ai_confidence == 0.9
    assert task.created_by == tenant_a.member
    inbound = _inbound(org).get()
    assert inbound.status == InboundStatus.TASK_CREATED
    assert inbound.task == task
    assert inbound.channel == "smtp"
    assert inbound.metadata["source"] == "rules"
    assert inbound.metadata["field_confidence"]["due_at"] == 0.95
    attachment = InboundAttachment.objects.for_org(org).get()
    stored = Path(f"{django_settings().MEDIA_ROOT}/orgs/{org.pk}/{attachment.path}")
    assert stored.read_bytes() == PDF
    assert attachment.task == task
    received = TaskEvent.objects.for_org(org).get(task=task, type="email_received")
    assert received.payload["attachments"][0]["filename"] == "quote.pdf"
    ack = django_mail.outbox[-1]
    assert ack.to == [tenant_a.member.email]
    assert f"https://staffer.example/orgs/acme/tasks/{task.pk}/" in ack.body
    assert ack.extra_headers["In-Reply-To"] == message["Message-ID"]
    assert ack.extra_headers["Auto-Submitted"] == "auto-replied"
    assert spool.count() == {"new": 0, "work": 0, "failed": 0}


def django_settings():
    from django.conf import settings

    return settings


def test_reply_is_added_to_the_task(tenant_a, smtp):
    """A reply (In-Reply-To the acknowledgement, or References the original) is a comment, not a new task."""
    org = tenant_a.organization
    django_mail.outbox.clear()
    first = make_mail(sender=tenant_a.member.email, to=org_address("acme"), subject="Fix the printer")
    smtp.send(first, sender=tenant_a.member.email, to=[org_address("acme")])
    task = _tasks(org).get()
    ack_id = django_mail.outbox[-1].extra_headers["Message-ID"]
    reply = make_mail(sender=tenant_a.manager.email, to=org_address("acme"), subject="Re: [Task] Fix the printer",
                      body="Ordered the part, @member.\n\nOn Mon, someone wrote:\n> Fix the printer",
                      headers={"In-Reply-To": ack_id, "References": f"{first['Message-ID']} {ack_id}"})
    smtp.send(reply, sender=tenant_a.manager.email, to=[org_address("acme")])
    again = make_mail(sender=tenant_a.member.email, to=org_address("acme"), subject="Re: Fix the printer",
                      body="Thanks!", headers={"References": first["Message-ID"]})
    smtp.send(again, sender=tenant_a.member.email, to=[org_address("acme")])
    assert _tasks(org).count() == 1
    comments = list(TaskEvent.objects.for_org(org).filter(task=task, type="comment").order_by("sequence"))
    assert [c.payload["text"] for c in comments] == ["Ordered the part, @member.", "Thanks!"]
    assert comments[0].actor == tenant_a.manager
    assert list(_inbound(org).order_by("id").values_list("status", flat=True)) == [
        "task_created", "appended", "appended"]
    mention = Notification.objects.for_org(org).get(user=tenant_a.member, kind="mention")
    assert mention.task == task


def test_duplicate_message_id_creates_nothing_new(tenant_a, smtp):
    """The same Message-ID delivered twice (also to the personal address) makes one task and one record."""
    org = tenant_a.organization
    message = make_mail(sender=tenant_a.member.email, to=org_address("acme"), message_id="<same@client.test>")
    smtp.send(message, sender=tenant_a.member.email, to=[org_address("acme")])
    refused = smtp.send(message, sender=tenant_a.member.email, to=[org_address("acme")])
    assert refused == {}
    assert _tasks(org).count() == 1
    assert _inbound(org).count() == 1


def test_unknown_sender_is_quarantined_and_admins_told(tenant_a, smtp):
    """A stranger's mail is accepted but quarantined with its reason; admins are notified; no ack to the stranger."""
    org = tenant_a.organization
    django_mail.outbox.clear()
    message = make_mail(sender="stranger@evil.test", to=org_address("acme"), subject="Wire money now")
    assert smtp.send(message, sender="stranger@evil.test", to=[org_address("acme")]) == {}
    assert not _tasks(org).exists()
    held = _inbound(org).get()
    assert (held.status, held.reason) == ("quarantined", "unknown_sender")
    assert bytes(held.raw) == message.as_bytes() or b"Wire money now" in bytes(held.raw)
    told = set(Notification.objects.for_org(org).filter(kind="mail_quarantined").values_list("user__email", flat=True))
    assert told == {tenant_a.owner.email, tenant_a.admin.email}
    assert django_mail.outbox == []


def test_oversize_is_refused_or_quarantined(tenant_a, settings, spool):
    """Over the SMTP limit: 552 and nothing stored. Over the message limit only: accepted, quarantined."""
    settings.INBOUND_SMTP_MAX_BYTES = 200_000
    settings.INBOUND_EMAIL_MAX_BYTES = 50_000
    receiver = Receiver(spool=spool, retry_seconds=3600, workers=2).start()
    try:
        smtp = SMTPSender(receiver)
        huge = make_mail(sender=tenant_a.member.email, to=org_address("acme"), body="x" * 300_000)
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as refused:
            smtp.send(huge, sender=tenant_a.member.email, to=[org_address("acme")])
        assert refused.value.smtp_code == 552
        assert spool.count()["new"] == 0
        assert not _inbound(tenant_a.organization).exists()
        big = make_mail(sender=tenant_a.member.email, to=org_address("acme"), body="y" * 100_000)
        assert smtp.send(big, sender=tenant_a.member.email, to=[org_address("acme")]) == {}
    finally:
        receiver.stop()
    held = _inbound(tenant_a.organization).get()
    assert (held.status, held.reason) == ("quarantined", "oversize")
    assert not _tasks(tenant_a.organization).exists()


def test_forbidden_attachment_type_is_quarantined(tenant_a, smtp, settings):
    """An executable attachment (by name, whatever its declared type) quarantines the message; nothing is stored."""
    org = tenant_a.organization
    message = make_mail(sender=tenant_a.member.email, to=org_address("acme"), subject="Invoice",
                        attachments=[("invoice.pdf.exe", b"MZ\x90\x00", "application/pdf")])
    assert smtp.send(message, sender=tenant_a.member.email, to=[org_address("acme")]) == {}
    held = _inbound(org).get()
    assert (held.status, held.reason) == ("quarantined", "attachment_type")
    assert "invoice.pdf.exe" in held.reason_detail
    assert not _tasks(org).exists()
    assert not Path(settings.MEDIA_ROOT, "orgs", str(org.pk)).exists()


def test_malformed_mime(tenant_a, smtp):
    """No headers or no From: 550 5.6.0 at DATA. Broken multipart structure: accepted and quarantined as malformed."""
    org = tenant_a.organization
    with pytest.raises(smtplib.SMTPDataError) as refused:
        smtp.send(b"\x00\xff garbage without any header\r\n", sender=tenant_a.member.email, to=[org_address("acme")])
    assert refused.value.smtp_code == 550
    assert b"5.6.0" in refused.value.smtp_error
    with pytest.raises(smtplib.SMTPDataError) as no_from:
        smtp.send(b"Subject: who sent this?\r\n\r\nbody\r\n", sender=tenant_a.member.email, to=[org_address("acme")])
    assert no_from.value.smtp_code == 550
    broken = (f"From: {tenant_a.member.email}\r\nTo: {org_address('acme')}\r\nSubject: Broken\r\n"
              "Message-ID: <broken@client.test>\r\nMIME-Version: 1.0\r\n"
              'Content-Type: multipart/mixed; boundary="never-used"\r\n\r\nthis is not a part\r\n').encode()
    assert smtp.send(broken, sender=tenant_a.member.email, to=[org_address("acme")]) == {}
    held = _inbound(org).get()
    assert (held.status, held.reason) == ("quarantined", "malformed")
    assert "StartBoundaryNotFoundDefect" in held.reason_detail


def test_bad_recipients_get_550_and_the_session_goes_on(tenant_a, smtp, receiver):
    """Another domain: 550 5.7.1; an address naming no organization: 550 5.1.1; the good recipient still works."""
    with smtplib.SMTP(receiver.host, receiver.port, timeout=60) as client:
        client.ehlo("client.test")
        assert client.mail(tenant_a.member.email)[0] == 250
        code, text = client.rcpt("someone@elsewhere.test")
        assert (code, text[:5]) == (550, b"5.7.1")
        code, text = client.rcpt(f"tasks+no-such-org@{DOMAIN}")
        assert (code, text[:5]) == (550, b"5.1.1")
        code, text = client.rcpt(f"tasks+acme.zzzzzzzzzz@{DOMAIN}")  # a personal token nobody has
        assert code == 550
        assert client.rcpt(org_address("acme"))[0] == 250
        message = make_mail(sender=tenant_a.member.email, to=org_address("acme"), subject="Still fine")
        assert client.data(as_wire(message))[0] == 250
    assert _tasks(tenant_a.organization).get().title == "Still fine"


class _DatabaseDown:
    """New database connections fail in every thread but the test's own (the test keeps its connection)."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.original = DatabaseWrapper.get_new_connection
        self.main = threading.main_thread()

    def __enter__(self):
        original, main = self.original, self.main

        def refuse(wrapper, conn_params):
            if threading.current_thread() is not main:
                raise psycopg.OperationalError("connection refused: the database is down (test)")
            return original(wrapper, conn_params)

        self.monkeypatch.setattr(DatabaseWrapper, "get_new_connection", refuse)
        return self

    def __exit__(self, *exc):
        self.monkeypatch.setattr(DatabaseWrapper, "get_new_connection", self.original)


def test_database_outage_during_delivery_spools_then_processes(tenant_a, smtp, receiver, spool, monkeypatch):
    """With the database down the mail is still accepted (250), stays spooled, and becomes a task when it is back."""
    org = tenant_a.organization
    message = make_mail(sender=tenant_a.member.email, to=org_address("acme"), subject="Renew the domain")
    with _DatabaseDown(monkeypatch):
        assert smtp.send(message, sender=tenant_a.member.email, to=[org_address("acme")]) == {}
        assert spool.count() == {"new": 1, "work": 0, "failed": 0}
        assert receiver.retry_spool().deferred == 1  # still down: it waits
    assert not _tasks(org).exists()
    result = receiver.retry_spool()  # the periodic retry, the database back
    assert result.processed == 1
    assert _tasks(org).get().title == "Renew the domain"
    assert spool.count() == {"new": 0, "work": 0, "failed": 0}


def test_receiver_start_processes_what_the_spool_kept(tenant_a, spool, monkeypatch):
    """Mail accepted during an outage by a receiver that then stopped is processed when a receiver starts again."""
    first = Receiver(spool=spool, retry_seconds=3600, workers=2).start()
    try:
        with _DatabaseDown(monkeypatch):
            message = make_mail(sender=tenant_a.member.email, to=org_address("acme"), subject="Pay the rent")
            assert SMTPSender(first).send(message, sender=tenant_a.member.email, to=[org_address("acme")]) == {}
    finally:
        first.stop()
    assert spool.count()["new"] == 1
    assert not _tasks(tenant_a.organization).exists()
    second = Receiver(spool=spool, retry_seconds=3600, workers=2).start()
    try:
        deadline = threading.Event()
        for _ in range(100):
            if _tasks(tenant_a.organization).exists():
                break
            deadline.wait(0.1)
    finally:
        second.stop()
    assert _tasks(tenant_a.organization).get().title == "Pay the rent"
    assert spool.count()["new"] == 0
