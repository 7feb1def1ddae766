"""Create notifications (once per user and key) and deliver them by email, at once or in a daily digest."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formataddr, make_msgid
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Membership, Organization, User
from automation.email_in import conf as mail_conf
from automation.email_in.addresses import organization_address
from automation.models import EmailThreadRef, Notification, Task
from automation.notifications import push
from automation.notifications.models import DigestStatus, EmailMode, NotificationDigest
from automation.notifications.preferences import channels_for

logger = logging.getLogger(__name__)

EMAIL_STATUS = {EmailMode.IMMEDIATE: "pending", EmailMode.DAILY: "digest", EmailMode.OFF: ""}
DEDUPE_CONSTRAINT = "notification_dedupe_once"
EMAIL_BATCH = 100


def digest_hour() -> int:
    """The organization-local hour at which daily digests go out."""
    return int(getattr(settings, "NOTIFICATIONS_DIGEST_HOUR", 8))


def from_address() -> str:
    return str(getattr(settings, "NOTIFICATIONS_FROM_EMAIL", "") or settings.DEFAULT_FROM_EMAIL)


def task_link(task: Task) -> str:
    return mail_conf.task_link(org_slug=task.organization.slug, task_id=task.pk)


def notify(
    *,
    organization: Organization,
    user_id: int,
    kind: str,
    title: str,
    dedupe_key: str,
    message: str = "",
    task: Task | None = None,
    link: str = "",
    data: dict[str, Any] | None = None,
) -> Notification | None:
    """Notify one member once per ``dedupe_key``, as their preferences for ``kind`` say.

    Returns the new notification, or None when it already exists (the same
    event again), the user is not a member, or they turned this kind off.
    The bell is pushed after commit. Call inside the transaction of the change.
    """
    if not Membership.objects.for_org(organization).filter(user_id=user_id, user__is_active=True).exists():
        return None
    channels = channels_for(organization=organization, user_id=user_id, kind=kind)
    if not channels.delivers:
        return None
    if task is not None and not link:
        link = task_link(task)
    try:
        with transaction.atomic():
            notification = Notification.objects.for_org(organization).create(
                organization=organization, user_id=user_id, kind=kind, title=title[:200], message=message,
                dedupe_key=dedupe_key[:200], link=link[:500], task=task, data=data or {},
                in_app=channels.in_app, email_status=EMAIL_STATUS[channels.email],
            )
    except IntegrityError as exc:
        if DEDUPE_CONSTRAINT in str(exc):
            return None
        raise
    if notification.in_app:
        transaction.on_commit(lambda: push.publish_created(notification))
    return notification


def notify_many(*, organization: Organization, user_ids: set[int] | list[int], **fields: Any) -> list[Notification]:
    created = [notify(organization=organization, user_id=uid, **fields) for uid in sorted(set(user_ids))]
    return [n for n in created if n is not None]


def existing_keys(*, keys: list[str]) -> set[tuple[int, int, str]]:
    """(organization, user, key) of the notifications that already hold one of ``keys``."""
    rows = Notification.objects.dangerously_unscoped().filter(dedupe_key__in=keys).values_list(
        "organization_id", "user_id", "dedupe_key"
    )
    return {(org, user, key) for org, user, key in rows}


# --- email -------------------------------------------------------------------------------


def _footer(organization: Organization) -> str:
    return (
        f"\n\n--\n{organization.name} on Staffer. Choose what you receive: "
        f"{mail_conf.site_url()}/api/v1/orgs/{organization.slug}/notification-preferences/\n"
    )


def _message(*, organization: Organization, to: str, subject: str, body: str, message_id: str,
             task: Task | None) -> EmailMessage:
    headers = {"Message-ID": message_id, "Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}
    reply_to = [organization_address(organization.slug)] if task is not None else []
    return EmailMessage(subject=subject, body=body, from_email=formataddr((organization.name, from_address())),
                        to=[to], reply_to=reply_to, headers=headers)


def _send(message: EmailMessage) -> None:
    sent = get_connection(fail_silently=False).send_messages([message])
    if not sent:
        raise OSError("the mail server did not take the message")


def notification_email_send(*, notification_id: int) -> str:
    """Email one pending notification (claimed first, so it is never sent twice); returns its email status."""
    claimed = Notification.objects.dangerously_unscoped().filter(pk=notification_id, email_status="pending").update(
        email_status="sending"
    )
    if not claimed:
        return "taken"
    notification = Notification.objects.dangerously_unscoped().select_related(
        "organization", "user", "task"
    ).get(pk=notification_id)
    organization = notification.organization
    message_id = make_msgid(idstring=f"notification-{notification.pk}", domain=mail_conf.domain())
    body = notification.message or notification.title
    if notification.link:
        body += f"\n\n{notification.link}"
    email = _message(organization=organization, to=notification.user.email,
                     subject=f"[{organization.name}] {notification.title}", body=body + _footer(organization),
                     message_id=message_id, task=notification.task)
    if notification.task_id is not None:
        EmailThreadRef.objects.for_org(organization).get_or_create(
            organization=organization, message_id=message_id,
            defaults={"task_id": notification.task_id, "outbound": True},
        )
    try:
        _send(email)
    except OSError as exc:
        logger.warning("notification %s: email failed: %s", notification.pk, exc)
        Notification.objects.dangerously_unscoped().filter(pk=notification.pk).update(email_status="failed")
        return "failed"
    Notification.objects.dangerously_unscoped().filter(pk=notification.pk).update(
        email_status="sent", emailed_at=timezone.now()
    )
    return "sent"


def notification_emails_send(*, limit: int = EMAIL_BATCH) -> int:
    """Send the pending immediate emails (system job); returns how many were sent."""
    ids = list(
        Notification.objects.dangerously_unscoped().filter(email_status="pending").order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    return sum(notification_email_send(notification_id=pk) == "sent" for pk in ids)


# --- daily digest ------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestResult:
    sent: int = 0
    items: int = 0


def zone_of(organization: Organization) -> ZoneInfo:
    try:
        return ZoneInfo(organization.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


DIGEST_ATTEMPTS = 5
DIGEST_RETRY_SECONDS = 300
"""A digest the mail server refused is sent again after 5, 10, 20 and 40 minutes, then given up (kept FAILED)."""


def digest_send(*, organization: Organization, user: User, now: datetime | None = None) -> NotificationDigest | None:
    """Send ``user`` today's digest of the notifications they chose to get daily, if not sent today.

    "Today" and the hour it is due (``NOTIFICATIONS_DIGEST_HOUR``) are the
    organization's local time. The digest row is unique per user and day and
    written before the email goes out, so a digest is never sent twice; one
    the mail server refused is sent again later (:func:`digest_retry`).
    """
    now = now or timezone.now()
    local = now.astimezone(zone_of(organization))
    if local.hour < digest_hour():
        return None
    try:
        with transaction.atomic():
            digest = NotificationDigest.objects.for_org(organization).create(
                organization=organization, user=user, period=local.date()
            )
            items = list(
                Notification.objects.for_org(organization).select_for_update()
                .filter(user=user, email_status="digest", created_at__lte=now).order_by("created_at", "id")
            )
            if not items:
                transaction.set_rollback(True)
                return None
            Notification.objects.for_org(organization).filter(pk__in=[n.pk for n in items]).update(
                email_status="digested", emailed_at=now
            )
            digest.items = [n.pk for n in items]
            digest.save(update_fields=["items"])
    except IntegrityError:
        return None  # today's digest went out already; these wait for tomorrow's
    return _deliver_digest(digest, organization=organization, user=user, items=items, now=now)


def _deliver_digest(digest: NotificationDigest, *, organization: Organization, user: User,
                    items: list[Notification], now: datetime) -> NotificationDigest:
    lines = [f"Your daily digest for {digest.period:%A %d %B %Y} ({len(items)} notifications):", ""]
    for item in items:
        lines.append(f"- {item.title}")
        if item.message:
            lines.append(f"  {item.message.splitlines()[0][:300]}")
        if item.link:
            lines.append(f"  {item.link}")
    message_id = make_msgid(idstring=f"digest-{digest.pk}", domain=mail_conf.domain())
    email = _message(organization=organization, to=user.email,
                     subject=f"[{organization.name}] Daily digest: {len(items)} notifications",
                     body="\n".join(lines) + _footer(organization), message_id=message_id, task=None)
    attempts = digest.attempts + 1
    try:
        _send(email)
    except OSError as exc:
        logger.warning("digest %s: email failed (attempt %s of %s): %s", digest.pk, attempts, DIGEST_ATTEMPTS, exc)
        again = (now + timedelta(seconds=DIGEST_RETRY_SECONDS * 2 ** (attempts - 1))
                 if attempts < DIGEST_ATTEMPTS else None)
        NotificationDigest.objects.for_org(organization).filter(pk=digest.pk).update(
            status=DigestStatus.FAILED, error=str(exc)[:500], attempts=attempts, next_attempt_at=again
        )
        digest.status, digest.attempts, digest.next_attempt_at = DigestStatus.FAILED, attempts, again
        return digest
    NotificationDigest.objects.for_org(organization).filter(pk=digest.pk).update(
        status=DigestStatus.SENT, sent_at=timezone.now(), attempts=attempts, next_attempt_at=None, error=""
    )
    digest.status, digest.attempts = DigestStatus.SENT, attempts
    return digest


def digest_retry(*, digest_id: int, now: datetime | None = None) -> NotificationDigest | None:
    """Send a failed digest again (the same notifications), if it is due; None when another took it or none."""
    now = now or timezone.now()
    claimed = NotificationDigest.objects.dangerously_unscoped().filter(
        pk=digest_id, status=DigestStatus.FAILED, next_attempt_at__lte=now
    ).update(status=DigestStatus.SENDING)
    if not claimed:
        return None
    digest = NotificationDigest.objects.dangerously_unscoped().select_related("organization", "user").get(
        pk=digest_id
    )
    organization = digest.organization
    by_id = {n.pk: n for n in Notification.objects.for_org(organization).filter(pk__in=digest.items)}
    items = [by_id[pk] for pk in digest.items if pk in by_id]
    return _deliver_digest(digest, organization=organization, user=digest.user, items=items, now=now)


def digests_send(*, now: datetime | None = None, limit: int = 500) -> DigestResult:
    """Send every digest that is due, and again those the mail server refused (system job, every organization)."""
    now = now or timezone.now()
    pairs = list(
        Notification.objects.dangerously_unscoped().filter(email_status="digest", created_at__lte=now)
        .values_list("organization_id", "user_id").distinct()[:limit]
    )
    organizations = {o.pk: o for o in Organization.objects.filter(pk__in={p[0] for p in pairs})}
    users = {u.pk: u for u in User.objects.filter(pk__in={p[1] for p in pairs})}
    sent = items = 0
    digests = [digest_send(organization=organizations[organization_id], user=users[user_id], now=now)
               for organization_id, user_id in pairs]
    due = NotificationDigest.objects.dangerously_unscoped().filter(
        status=DigestStatus.FAILED, next_attempt_at__lte=now
    ).order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    digests += [digest_retry(digest_id=pk, now=now) for pk in due]
    for digest in digests:
        if digest is not None and digest.status == DigestStatus.SENT:
            sent += 1
            items += len(digest.items)
    return DigestResult(sent=sent, items=items)
