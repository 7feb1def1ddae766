"""Writes of email in: receive a message, quarantine or accept it, release or delete it, acknowledge it.

:func:`inbound_receive` is the whole decision for one message and one
recipient organization, in one transaction: a duplicate Message-ID creates
nothing; a message that should not be trusted is quarantined with its
reason (and the organization's admins are notified); a reply joins the task
it answers; anything else becomes a task (source ``email``) with its
attachments in the organization's files and its metadata extracted.

SECURITY: the built-in receiver checks no SPF/DKIM/DMARC itself; failures
reported in ``Authentication-Results`` / ``Received-SPF`` (by an MTA in
front of it) or by a provider quarantine the message. Only a message whose
From address belongs to a member with the ``tasks:write`` scope is acted on
without an admin's release. Acknowledgements go only to such members, never
to an unknown address (no backscatter).
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import formataddr, make_msgid
from typing import Any

from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import Membership, Organization, User
from accounts.roles import ROLE_SCOPES, Scope
from accounts.services.audit import audit_record
from automation.email_in import conf
from automation.email_in.addresses import new_token, organization_address, parse_address
from automation.email_in.hooks import Candidate, ExtractedMetadata, ExtractionRequest, extract_metadata
from automation.email_in.parsing import ParsedAttachment, ParsedMail, parse_message
from automation.models import (
    AckStatus,
    EmailThreadRef,
    ExecutionType,
    InboundAttachment,
    InboundMemberAddress,
    InboundMessage,
    InboundStatus,
    Priority,
    QuarantineReason,
    Task,
    TaskSource,
)
from automation.notifications.models import NotificationKind
from automation.notifications.services import notify_many
from automation.services.events import event_append
from automation.services.tasks import task_create
from tools.errors import ToolError
from tools.storage import storage_for

logger = logging.getLogger(__name__)

R = QuarantineReason
DUPLICATE_CONSTRAINT = "inbound_message_once"
MAX_COMMENT = 20_000
_SUBJECT_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|tr)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_QUOTE_START = re.compile(r"^(on .{3,200} wrote:|-----\s*original message\s*-----|from:\s.+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Recipient:
    organization: Organization
    address: str
    personal_user: User | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one message for one recipient."""

    status: str  # task_created, appended, quarantined, duplicate, no_recipient
    message: InboundMessage | None = None
    task: Task | None = None
    reason: str = ""


# --- addresses ---------------------------------------------------------------------------


def resolve_recipient(address: str) -> Recipient | None:
    """The organization (and member) an inbound address names, or None. Reads the database."""
    parts = parse_address(address)
    if parts is None:
        return None
    organization = Organization.objects.filter(slug=parts.slug).first()
    if organization is None:
        return None
    if not parts.token:
        return Recipient(organization=organization, address=address.strip().lower())
    personal = (
        InboundMemberAddress.objects.for_org(organization).select_related("user").filter(token=parts.token).first()
    )
    if personal is None or not Membership.objects.for_org(organization).filter(user=personal.user).exists():
        return None
    return Recipient(organization=organization, address=address.strip().lower(), personal_user=personal.user)


def member_address(*, organization: Organization, user: User) -> InboundMemberAddress:
    """``user``'s personal address in ``organization``, created on first use."""
    found = InboundMemberAddress.objects.for_org(organization).filter(user=user).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return InboundMemberAddress.objects.for_org(organization).create(
                organization=organization, user=user, token=new_token()
            )
    except IntegrityError:
        return InboundMemberAddress.objects.for_org(organization).get(user=user)


def member_address_rotate(*, organization: Organization, user: User) -> InboundMemberAddress:
    """Give ``user`` a new personal address; the old one stops working at once."""
    with transaction.atomic():
        address = member_address(organization=organization, user=user)
        address = InboundMemberAddress.objects.for_org(organization).select_for_update().get(pk=address.pk)
        address.token = new_token()
        address.rotated_at = timezone.now()
        address.save(update_fields=["token", "rotated_at"])
        audit_record(organization=organization, actor=user, action="inbound.address_rotated", target=address)
    return address


# --- checks ------------------------------------------------------------------------------


def _member(organization: Organization, email: str) -> Membership | None:
    if not email:
        return None
    return (
        Membership.objects.for_org(organization).select_related("user")
        .filter(user__email__iexact=email, user__is_active=True).first()
    )


def attachment_problem(attachment: ParsedAttachment) -> tuple[str, str] | None:
    """(reason, detail) if this attachment may not be stored; None if it may (an empty one is skipped, not refused)."""
    name = attachment.filename.lower()
    extension = name.rpartition(".")[2] if "." in name else ""
    if extension in conf.FORBIDDEN_EXTENSIONS:
        return R.ATTACHMENT_TYPE, f"{attachment.filename!r}: .{extension} files are not accepted"
    content_type = attachment.content_type.lower()
    if content_type in ("application/octet-stream", "binary/octet-stream"):
        content_type = (mimetypes.guess_type(name)[0] or content_type).lower()
    allowed = conf.allowed_attachment_types()
    if content_type not in allowed and f"{content_type.partition('/')[0]}/*" not in allowed:
        return R.ATTACHMENT_TYPE, f"{attachment.filename!r}: type {content_type} is not accepted"
    if attachment.size > conf.max_attachment_bytes():
        return R.ATTACHMENT_SIZE, (f"{attachment.filename!r}: {attachment.size} bytes, more than the "
                                   f"{conf.max_attachment_bytes()} allowed")
    return None


def quarantine_reason(
    *, mail: ParsedMail, organization: Organization, membership: Membership | None, provider: dict[str, Any]
) -> tuple[str, str]:
    """(reason, detail) to quarantine ``mail`` for, or ('', '') to accept it. The first reason found wins."""
    if mail.fatal:
        return R.MALFORMED, mail.fatal
    if mail.malformed:
        return R.MALFORMED, mail.malformed
    if mail.bounce:
        return R.BOUNCE, mail.bounce
    if mail.auto_reply:
        return R.AUTO_REPLY, mail.auto_reply
    failed = {**mail.failed_verdicts, **{k: v for k, v in provider.items() if k in ("spf", "dkim", "dmarc")
                                          and v in ("fail", "hardfail")}}
    if failed:
        return R.AUTH_FAILED, ", ".join(f"{name}={value}" for name, value in sorted(failed.items()))
    if provider.get("spam"):
        return R.SPAM, f"the provider flagged it as spam ({provider.get('spam')})"
    if membership is None:
        return R.UNKNOWN_SENDER, f"{mail.from_address or 'the sender'} is not a member of {organization.name}"
    if Scope.TASKS_WRITE not in membership.scopes:
        return R.NOT_PERMITTED, f"{mail.from_address}'s role may not create tasks"
    if mail.raw_size > conf.max_message_bytes():
        return R.OVERSIZE, f"{mail.raw_size} bytes, more than the {conf.max_message_bytes()} accepted"
    if len(mail.attachments) > conf.max_attachments():
        return R.ATTACHMENT_SIZE, f"{len(mail.attachments)} attachments, more than {conf.max_attachments()}"
    for attachment in mail.attachments:
        problem = attachment_problem(attachment)
        if problem is not None:
            return problem
    return "", ""


# --- receiving ---------------------------------------------------------------------------


def _duplicate(exc: IntegrityError) -> bool:
    return DUPLICATE_CONSTRAINT in str(exc)


def inbound_receive(
    *,
    recipient: Recipient,
    mail: ParsedMail,
    raw: bytes,
    channel: str,
    envelope_sender: str = "",
    provider_verdicts: dict[str, Any] | None = None,
    received_at: datetime | None = None,
) -> Outcome:
    """Decide what ``mail`` becomes in ``recipient``'s organization, in one transaction (see the module doc)."""
    organization = recipient.organization
    received_at = received_at or timezone.now()
    provider = provider_verdicts or {}
    if InboundMessage.objects.for_org(organization).filter(message_id=mail.message_id).exists():
        return Outcome(status="duplicate")
    membership = _member(organization, mail.from_address)
    reason, detail = quarantine_reason(mail=mail, organization=organization, membership=membership, provider=provider)
    message = InboundMessage(
        organization=organization, message_id=mail.message_id, channel=channel, recipient=recipient.address[:254],
        personal_user=recipient.personal_user, sender=mail.from_address[:254], sender_name=mail.from_name[:200],
        envelope_sender=(envelope_sender or "")[:254], sender_user=membership.user if membership else None,
        subject=mail.subject[:500], in_reply_to=mail.in_reply_to[:500], references=mail.references,
        size=mail.raw_size, verdicts={**mail.verdicts, **{k: str(v) for k, v in provider.items()}},
        received_at=received_at,
        status=InboundStatus.QUARANTINED if reason else InboundStatus.TASK_CREATED, reason=reason,
        reason_detail=detail,
    )
    try:
        with transaction.atomic():
            message.save(force_insert=True)
            if reason:
                message.raw = raw
                message.save(update_fields=["raw"])
                _tell_admins(message)
                return Outcome(status="quarantined", message=message, reason=reason)
            assert membership is not None
            outcome = _accept(message, mail, recipient, actor=membership.user,
                              actor_label=f"email:{mail.from_address}"[:200])
    except IntegrityError as exc:
        if _duplicate(exc):
            return Outcome(status="duplicate")
        raise
    return outcome


def _tell_admins(message: InboundMessage) -> None:
    organization = message.organization
    roles = [role for role, scopes in ROLE_SCOPES.items() if Scope.MEMBERS_MANAGE in scopes]
    admins = set(Membership.objects.for_org(organization).filter(role__in=roles).values_list("user_id", flat=True))
    notify_many(
        organization=organization, user_ids=admins, kind=NotificationKind.MAIL_QUARANTINED,
        dedupe_key=f"inbound:{message.pk}:quarantined",
        title=f"Mail quarantined: {message.subject or '(no subject)'}"[:200],
        message=f"From {message.sender or 'an unknown sender'} to {message.recipient}: "
                f"{message.get_reason_display()} ({message.reason_detail})"[:2000],
        link=f"{conf.site_url()}/api/v1/orgs/{organization.slug}/inbound/quarantine/{message.pk}/",
        data={"inbound_message": message.pk, "reason": message.reason},
    )


def _thread_task(organization: Organization, mail: ParsedMail) -> Task | None:
    ids = mail.thread_ids
    if not ids:
        return None
    ref = (
        EmailThreadRef.objects.for_org(organization).select_related("task")
        .filter(message_id__in=ids).order_by("-id").first()
    )
    return ref.task if ref is not None else None


def _thread_add(organization: Organization, message_id: str, task: Task, *, outbound: bool = False) -> None:
    EmailThreadRef.objects.for_org(organization).bulk_create(
        [EmailThreadRef(organization=organization, message_id=message_id[:500], task=task, outbound=outbound)],
        ignore_conflicts=True,
    )


def _accept(
    message: InboundMessage, mail: ParsedMail, recipient: Recipient, *, actor: User | None, actor_label: str,
    strict_attachments: bool = True,
) -> Outcome:
    organization = message.organization
    task = _thread_task(organization, mail)
    if task is not None:
        stored = _store_attachments(message, mail, task, strict=strict_attachments)
        event_append(task=task, type="comment", actor=actor, actor_label=actor_label, payload={
            "via": "email", "text": reply_text(mail.text)[:MAX_COMMENT], "subject": mail.subject,
            "from": mail.from_address, "message_id": mail.message_id, "inbound_message": message.pk,
            "attachments": stored,
        })
        _thread_add(organization, mail.message_id, task)
        message.status = InboundStatus.APPENDED if message.status != InboundStatus.RELEASED else message.status
        message.task = task
        message.save(update_fields=["status", "task"])
        return Outcome(status="appended", message=message, task=task)

    metadata = _extract(organization, mail, message.received_at)
    task, notes = _create_task(message, mail, recipient, metadata, actor=actor, actor_label=actor_label)
    stored = _store_attachments(message, mail, task, strict=strict_attachments)
    event_append(task=task, type="email_received", actor=actor, actor_label=actor_label, payload={
        "inbound_message": message.pk, "message_id": mail.message_id, "from": mail.from_address,
        "subject": mail.subject, "attachments": stored, "metadata": metadata.as_json(), "notes": notes,
    })
    _thread_add(organization, mail.message_id, task)
    message.task = task
    message.metadata = {**metadata.as_json(), "notes": [*metadata.notes, *notes]}
    fields = ["task", "metadata", "status"]
    if message.sender_user_id is not None:
        message.ack_status = AckStatus.PENDING
        message.ack_message_id = make_msgid(idstring=f"ack-{message.pk}", domain=conf.domain())
        _thread_add(organization, message.ack_message_id, task, outbound=True)
        fields += ["ack_status", "ack_message_id"]
        pk = message.pk
        transaction.on_commit(lambda: ack_send_quietly(message_id=pk))
    message.save(update_fields=fields)
    return Outcome(status="task_created", message=message, task=task)


def reply_text(text: str) -> str:
    """The new part of a reply: quoted lines and the quoted original below it dropped (all of it if nothing is left)."""
    kept: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if _QUOTE_START.match(stripped) and kept:
            break
        if stripped.startswith(">"):
            continue
        kept.append(line)
    result = "\n".join(kept).strip()
    return result or text.strip()


def _candidates(organization: Organization) -> tuple[Candidate, ...]:
    rows = (
        Membership.objects.for_org(organization).filter(user__is_active=True)
        .values_list("user_id", "user__email", "user__full_name").order_by("user_id")[:500]
    )
    return tuple(Candidate(user_id=uid, email=email, full_name=name or "") for uid, email, name in rows)


def _extract(organization: Organization, mail: ParsedMail, received_at: datetime) -> ExtractedMetadata:
    return extract_metadata(ExtractionRequest(
        organization_id=organization.pk, organization_slug=organization.slug, timezone=organization.timezone,
        sender_email=mail.from_address, subject=mail.subject, text=mail.text[:20_000], received_at=received_at,
        members=_candidates(organization),
    ))


def task_title(mail: ParsedMail) -> str:
    title = _SUBJECT_PREFIX.sub("", mail.subject).strip()
    if not title:
        first = next((line.strip() for line in mail.text.splitlines() if line.strip()), "")
        title = first[:120] or f"Email from {mail.from_address}"
    return title[:300]


def _create_task(
    message: InboundMessage, mail: ParsedMail, recipient: Recipient, metadata: ExtractedMetadata, *,
    actor: User | None, actor_label: str,
) -> tuple[Task, list[str]]:
    organization = message.organization
    notes: list[str] = []
    assignee: User | None = recipient.personal_user
    if assignee is None and metadata.assignee:
        found = _member(organization, metadata.assignee)
        if found is not None:
            assignee = found.user
        else:
            notes.append(f"assignee {metadata.assignee!r} is not a member; left unassigned")
    description = mail.text
    if mail.text_truncated:
        description += "\n\n[The message was longer; the rest was cut.]"
    common: dict[str, Any] = {
        "organization": organization, "actor": actor, "actor_label": actor_label, "title": task_title(mail),
        "description": description, "source": TaskSource.EMAIL, "priority": metadata.priority or Priority.NORMAL,
        "due_at": metadata.due_at, "assignee": assignee, "ai_confidence": metadata.confidence,
        "ai_context": {"email": {"inbound_message": message.pk, "message_id": mail.message_id,
                                 "from": mail.from_address, "metadata": metadata.as_json()}},
    }
    if metadata.automatable and metadata.executor:
        try:
            with transaction.atomic():
                task = task_create(**common, execution_type=ExecutionType.FULLY_AUTOMATED,
                                   executor=metadata.executor, parameters=metadata.parameters)
            notes.append(f"classified as fully automatable: runs {metadata.executor}")
            return task, notes
        except InvalidInput as exc:
            notes.append(f"could not run it automatically ({exc.message}); a person will do it")
    return task_create(**common, execution_type=ExecutionType.MANUAL), notes


def _store_attachments(message: InboundMessage, mail: ParsedMail, task: Task, *, strict: bool) -> list[dict[str, Any]]:
    """Write attachments into the organization's files under ``email/<day>/<message>/`` and link them to ``task``."""
    if not mail.attachments:
        return []
    organization = message.organization
    storage = storage_for(organization.pk)
    folder = f"email/{message.received_at:%Y-%m-%d}/{hashlib.sha256(mail.message_id.encode()).hexdigest()[:16]}"
    stored: list[dict[str, Any]] = []
    for index, attachment in enumerate(mail.attachments[: conf.max_attachments()], start=1):
        note, path = "", ""
        problem = None if strict else attachment_problem(attachment)
        if attachment.size == 0:
            note = "empty attachment; not stored"
        elif problem is not None:
            note = f"{problem[1]}; not stored"
        else:
            path = f"{folder}/{index:02d}-{attachment.filename}"
            try:
                storage.write(path, attachment.data, overwrite=True)
            except (ToolError, OSError) as exc:
                note, path = f"could not be stored: {exc}", ""
        InboundAttachment.objects.for_org(organization).create(
            organization=organization, message=message, task=task, filename=attachment.filename[:255],
            content_type=attachment.content_type[:120], size=attachment.size, sha256=attachment.sha256,
            path=path, note=note[:300],
        )
        entry: dict[str, Any] = {"filename": attachment.filename, "size": attachment.size,
                                 "content_type": attachment.content_type, "path": path}
        if note:
            entry["note"] = note
        stored.append(entry)
    return stored


# --- quarantine decisions ------------------------------------------------------------------


def _quarantined(message: InboundMessage) -> InboundMessage:
    locked = InboundMessage.objects.for_org(message.organization).select_for_update().get(pk=message.pk)
    if locked.status != InboundStatus.QUARANTINED:
        raise InvalidInput(f"this message is {locked.status}, not quarantined", field="status", code="not_quarantined")
    return locked


def inbound_release(*, message: InboundMessage, actor: User) -> InboundMessage:
    """An admin vouches for a quarantined message: it becomes a task (or joins its thread) now.

    Attachments whose type or size was refused are still not stored (the
    task notes why). The task is created by the sender if they are a member,
    else by the system on the admin's word; an acknowledgement goes only to a member.
    """
    with transaction.atomic():
        message = _quarantined(message)
        organization = message.organization
        mail = parse_message(bytes(message.raw or b""), envelope_sender=message.envelope_sender or None)
        membership = _member(organization, mail.from_address)
        sender = membership.user if membership is not None else None
        label = f"email:{mail.from_address or 'unknown'} (released by {actor.email})"[:200]
        message.status = InboundStatus.RELEASED
        message.decided_by, message.decided_at = actor, timezone.now()
        message.sender_user = sender
        message.raw = None
        message.save(update_fields=["status", "decided_by", "decided_at", "sender_user", "raw"])
        recipient = Recipient(organization=organization, address=message.recipient,
                              personal_user=message.personal_user)
        outcome = _accept(message, mail, recipient, actor=sender, actor_label=label, strict_attachments=False)
        audit_record(organization=organization, actor=actor, action="inbound.released", target=message,
                     before={"reason": message.reason}, after={"task": outcome.task.pk if outcome.task else None})
    return message


def inbound_delete(*, message: InboundMessage, actor: User) -> InboundMessage:
    """An admin discards a quarantined message: its content is erased, the record (and its Message-ID) stays."""
    with transaction.atomic():
        message = _quarantined(message)
        message.status = InboundStatus.DELETED
        message.decided_by, message.decided_at = actor, timezone.now()
        message.raw = None
        message.save(update_fields=["status", "decided_by", "decided_at", "raw"])
        audit_record(organization=message.organization, actor=actor, action="inbound.deleted", target=message,
                     before={"reason": message.reason, "sender": message.sender, "subject": message.subject})
    return message


# --- acknowledgements ------------------------------------------------------------------------


def ack_send(*, message_id: int) -> str:
    """Send the acknowledgement of one accepted message (claimed first: never twice); returns the outcome."""
    claimed = InboundMessage.objects.dangerously_unscoped().filter(
        pk=message_id, ack_status=AckStatus.PENDING
    ).update(ack_status=AckStatus.SENT, acked_at=timezone.now())
    if not claimed:
        return "taken"
    message = InboundMessage.objects.dangerously_unscoped().select_related("organization", "task").get(pk=message_id)
    organization, task = message.organization, message.task
    if task is None or not message.sender:
        return "skipped"
    link = conf.task_link(org_slug=organization.slug, task_id=task.pk)
    inbound = organization_address(organization.slug)
    body = (
        f"Hello,\n\nyour email {message.subject!r} is now task #{task.pk} in {organization.name}:\n{link}\n\n"
        f"Reply to this email to add a comment to the task.\n"
    )
    if task.due_at or task.assignee_user_id:
        body += "\nWhat I understood:"
        if task.due_at:
            body += f"\n- due {task.due_at:%Y-%m-%d %H:%M} UTC"
        if task.assignee_user_id:
            body += f"\n- assigned to {task.assignee_user.email if task.assignee_user else ''}"
        body += "\n"
    references = " ".join([*message.references[-10:], message.message_id])
    email = EmailMessage(
        subject=f"[Task #{task.pk}] {task.title}"[:300], body=body,
        from_email=formataddr((organization.name, inbound)), to=[message.sender], reply_to=[inbound],
        headers={"Message-ID": message.ack_message_id, "In-Reply-To": message.message_id, "References": references,
                 "Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
    )
    try:
        sent = get_connection(fail_silently=False).send_messages([email])
        if not sent:
            raise OSError("the mail server did not take the message")
    except OSError as exc:
        logger.warning("acknowledgement of inbound message %s failed: %s", message.pk, exc)
        InboundMessage.objects.dangerously_unscoped().filter(pk=message.pk).update(
            ack_status=AckStatus.PENDING, acked_at=None
        )
        return "failed"
    return "sent"


def ack_send_quietly(*, message_id: int) -> None:
    """After commit: try the acknowledgement now; the periodic job retries what is left pending."""
    try:
        ack_send(message_id=message_id)
    except Exception:  # the message is recorded; only the courtesy email is late
        logger.warning("acknowledgement of inbound message %s will be retried", message_id, exc_info=True)


def acks_send_pending(*, limit: int = 100) -> int:
    """Send acknowledgements still pending (system job); returns how many went out."""
    ids = list(
        InboundMessage.objects.dangerously_unscoped().filter(ack_status=AckStatus.PENDING).order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    return sum(ack_send(message_id=pk) == "sent" for pk in ids)
