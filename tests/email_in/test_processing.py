"""What a received message becomes: quarantine reasons, personal addresses, the metadata hook, release and delete."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core import mail as django_mail

from accounts.errors import InvalidInput
from accounts.models import AuditEvent
from automation.email_in import services
from automation.email_in.hooks import ExtractedMetadata, register_metadata_extractor, unregister_metadata_extractor
from automation.email_in.parsing import parse_message
from automation.email_in.processing import envelope, spool_process
from automation.email_in.services import (
    acks_send_pending,
    inbound_delete,
    inbound_receive,
    inbound_release,
    member_address,
    resolve_recipient,
)
from automation.models import InboundAttachment, InboundMessage, Notification, Task, TaskEvent
from tests.email_in.conftest import DOMAIN, as_wire, make_mail, org_address

pytestmark = pytest.mark.django_db


def receive(message, to: str, *, envelope_sender: str | None = "sender@client.test", provider=None):
    raw = message if isinstance(message, bytes) else as_wire(message)
    recipient = resolve_recipient(to)
    assert recipient is not None
    return inbound_receive(recipient=recipient, mail=parse_message(raw, envelope_sender=envelope_sender), raw=raw,
                           channel="smtp", envelope_sender=envelope_sender or "", provider_verdicts=provider)


def test_personal_address_assigns_the_task_to_its_owner(tenant_a):
    """Mail from a member to a colleague's personal address is a task assigned to that colleague, who is told."""
    org = tenant_a.organization
    token = member_address(organization=org, user=tenant_a.manager).token
    outcome = receive(make_mail(sender=tenant_a.member.email, to="x", subject="Review the contract"),
                      f"tasks+acme.{token}@{DOMAIN}")
    task = outcome.task
    assert (task.assignee_user, task.created_by) == (tenant_a.manager, tenant_a.member)
    assigned = Notification.objects.for_org(org).get(kind="task_assigned")
    assert assigned.user == tenant_a.manager
    assert assigned.link == f"https://staffer.example/orgs/acme/tasks/{task.pk}/"
    assert not Notification.objects.for_org(org).filter(user=tenant_a.member).exists()


@pytest.mark.parametrize(("headers", "envelope_sender", "reason"), [
    ({"Auto-Submitted": "auto-replied"}, "member@acme.test", "auto_reply"),
    ({"Precedence": "bulk"}, "member@acme.test", "auto_reply"),
    ({}, "", "bounce"),
    ({"Authentication-Results": "mx.acme.test; spf=pass; dkim=pass; dmarc=fail (p=reject)"}, "member@acme.test",
     "auth_failed"),
])
def test_untrusted_mail_from_a_member_is_quarantined(tenant_a, headers, envelope_sender, reason):
    """Auto-replies, bounces and failed DMARC are quarantined with their reason even from a member's address."""
    message = make_mail(sender=tenant_a.member.email, to=org_address("acme"), headers=headers)
    outcome = receive(message, org_address("acme"), envelope_sender=envelope_sender)
    assert (outcome.status, outcome.reason) == ("quarantined", reason)
    assert not Task.objects.for_org(tenant_a.organization).exists()


def test_viewer_may_not_create_tasks_by_mail(tenant_a):
    """A viewer (no tasks:write) is quarantined as not permitted."""
    outcome = receive(make_mail(sender=tenant_a.viewer.email, to="x"), org_address("acme"))
    assert (outcome.status, outcome.reason) == ("quarantined", "not_permitted")


def test_other_organizations_member_is_unknown_here(tenants):
    """A member of another organization is an unknown sender here."""
    _a, b = tenants
    outcome = receive(make_mail(sender=b.owner.email, to="x"), org_address("acme"))
    assert (outcome.status, outcome.reason) == ("quarantined", "unknown_sender")


def test_empty_attachment_is_skipped_with_a_note(tenant_a, settings):
    """A zero-byte attachment is not stored; the task says so; the other attachment is stored."""
    message = make_mail(sender=tenant_a.member.email, to="x",
                        attachments=[("empty.txt", b"", "text/plain"), ("notes.txt", b"hello", "text/plain")])
    outcome = receive(message, org_address("acme"))
    rows = list(InboundAttachment.objects.for_org(tenant_a.organization).order_by("id"))
    assert [(r.filename, r.note, bool(r.path)) for r in rows] == [
        ("empty.txt", "empty attachment; not stored", False), ("notes.txt", "", True)]
    assert Path(settings.MEDIA_ROOT, "orgs", str(tenant_a.organization.pk), rows[1].path).read_bytes() == b"hello"
    event = TaskEvent.objects.for_org(tenant_a.organization).get(task=outcome.task, type="email_received")
    assert event.payload["attachments"][0]["note"] == "empty attachment; not stored"


def test_registered_extractor_classifies_automatable_work(tenant_a):
    """An extractor registered from above (the agents app) is used; fully automatable work is queued to run."""

    def agents_extractor(request):
        assert request.sender_email == tenant_a.member.email
        return ExtractedMetadata(priority=75, automatable=True, executor="noop", parameters={}, confidence=0.92,
                                 field_confidence={"automatable": 0.92}, source="agents:scripted")

    register_metadata_extractor(agents_extractor)
    try:
        outcome = receive(make_mail(sender=tenant_a.member.email, to="x", subject="Ping the status page"),
                          org_address("acme"))
    finally:
        unregister_metadata_extractor(agents_extractor)
    task = outcome.task
    assert (task.execution_type, task.executor, task.status) == ("fully_automated", "noop", "queued")
    assert task.ai_confidence == 0.92
    assert outcome.message.metadata["source"] == "agents:scripted"


def test_failing_or_wrong_extractor_falls_back_safely(tenant_a):
    """An extractor that raises gives way to the rules; an unknown executor leaves the task to a person."""

    def broken(request):
        raise RuntimeError("model unavailable")

    def unknown_executor(request):
        return ExtractedMetadata(automatable=True, executor="no-such-executor", confidence=0.8, source="agents")

    register_metadata_extractor(broken)
    try:
        first = receive(make_mail(sender=tenant_a.member.email, to="x", body="urgent"), org_address("acme"))
    finally:
        unregister_metadata_extractor(broken)
    assert first.task.priority == 100
    assert first.message.metadata["source"] == "rules"
    register_metadata_extractor(unknown_executor)
    try:
        second = receive(make_mail(sender=tenant_a.member.email, to="x"), org_address("acme"))
    finally:
        unregister_metadata_extractor(unknown_executor)
    assert second.task.execution_type == "manual"
    assert any("could not run it automatically" in note for note in second.message.metadata["notes"])


def test_release_creates_the_task_without_forbidden_attachments(tenant_a):
    """Released by an admin: the task exists, the refused attachment is not stored, the raw copy is erased."""
    org = tenant_a.organization
    message = make_mail(sender=tenant_a.member.email, to="x", subject="Run this",
                        attachments=[("setup.exe", b"MZ", "application/octet-stream"),
                                     ("readme.txt", b"read me", "text/plain")])
    held = receive(message, org_address("acme")).message
    assert held.reason == "attachment_type"
    released = inbound_release(message=held, actor=tenant_a.admin)
    assert released.status == "released"
    assert released.raw is None
    task = Task.objects.for_org(org).get()
    assert task.created_by == tenant_a.member
    notes = dict(InboundAttachment.objects.for_org(org).values_list("filename", "note"))
    assert notes["readme.txt"] == ""
    assert "not accepted; not stored" in notes["setup.exe"]
    assert AuditEvent.objects.for_org(org).filter(action="inbound.released", actor=tenant_a.admin).exists()
    with pytest.raises(InvalidInput):
        inbound_release(message=held, actor=tenant_a.admin)


def test_release_of_an_unknown_sender_sends_no_acknowledgement(tenant_a, django_capture_on_commit_callbacks):
    """A stranger's released mail becomes a system task; the stranger gets no email (no backscatter)."""
    django_mail.outbox.clear()
    held = receive(make_mail(sender="vendor@supplier.test", to="x", subject="Price list"), org_address("acme")).message
    with django_capture_on_commit_callbacks(execute=True):
        inbound_release(message=held, actor=tenant_a.admin)
    task = Task.objects.for_org(tenant_a.organization).get()
    assert task.created_by is None
    assert "released by admin@acme.test" in TaskEvent.objects.for_org(tenant_a.organization).get(
        task=task, type="created").actor_label
    assert django_mail.outbox == []


def test_delete_erases_content_and_keeps_the_message_id(tenant_a):
    """Deleted: content erased, record kept; the same message again creates nothing new."""
    message = make_mail(sender="spam@bulk.test", to="x", message_id="<spam-1@bulk.test>")
    held = receive(message, org_address("acme")).message
    deleted = inbound_delete(message=held, actor=tenant_a.owner)
    assert (deleted.status, deleted.raw) == ("deleted", None)
    assert receive(message, org_address("acme")).status == "duplicate"
    assert InboundMessage.objects.for_org(tenant_a.organization).count() == 1


def test_acknowledgement_retried_until_sent(tenant_a, monkeypatch, django_capture_on_commit_callbacks):
    """If the outgoing mail server is down the acknowledgement stays pending; the job sends it later, once."""
    django_mail.outbox.clear()

    def down(**kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(services, "get_connection", down)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = receive(make_mail(sender=tenant_a.member.email, to="x"), org_address("acme"))
    message = InboundMessage.objects.for_org(tenant_a.organization).get(pk=outcome.message.pk)
    assert message.ack_status == "pending"
    monkeypatch.undo()
    assert acks_send_pending() == 1
    assert acks_send_pending() == 0
    assert len(django_mail.outbox) == 1


def test_spooled_mail_for_no_organization_is_kept_aside(spool, tenant_a):
    """Accepted while the database was down, for an address no organization has: kept in failed/ with why."""
    raw = as_wire(make_mail(sender=tenant_a.member.email, to="x"))
    spool.write(raw, envelope(channel="smtp", mail_from=tenant_a.member.email,
                              recipients=[f"tasks+ghost-org@{DOMAIN}"]))
    result = spool_process(spool=spool)
    assert result.failed == 1
    kept = list(spool.failed.iterdir())
    assert len(kept) == 2
    reason = next(p for p in kept if p.name.endswith(".reason")).read_text()
    assert "no organization has any of these addresses" in reason
