"""Reminders: one-off or recurring notifications to a user, delivered in-app.

Reminders use the schedules' timing (cron in a time zone, interval, one-off)
and are fired by the same ticker, with the same SKIP LOCKED batches. A
reminder missed while the system was down follows its missed-run policy; a
notification is unique per (reminder, scheduled time), so none is sent twice.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import Membership, Organization, User
from accounts.services.audit import audit_record
from automation.models.schedules import MissedRunPolicy, Notification, Reminder
from automation.services import schedules_clock as clock
from automation.services.schedules import (
    BATCH_SIZE,
    TICK_BUDGET_SECONDS,
    TickResult,
    TimingInput,
    check_policy,
    check_timing,
    grace,
    timing_of,
)

REMINDER_KINDS = (clock.KIND_CRON, clock.KIND_INTERVAL, clock.KIND_ONE_OFF)
TIMING_KEYS = ("kind", "cron_expression", "timezone", "interval_seconds", "run_at")
UPDATABLE = frozenset({"title", "message", "enabled", "missed_run_policy", "max_catch_up", *TIMING_KEYS})


def _check_text(title: str) -> str:
    title = (title or "").strip()
    if not title or len(title) > 200:
        raise InvalidInput("a reminder needs a title of at most 200 characters", field="title")
    return title


def reminder_create(
    *,
    organization: Organization,
    actor: User,
    user: User | None = None,
    title: str,
    message: str = "",
    kind: str = clock.KIND_ONE_OFF,
    cron_expression: str = "",
    timezone_name: str = "",
    interval_seconds: int | None = None,
    run_at: datetime | None = None,
    missed_run_policy: str = MissedRunPolicy.RUN_ONCE,
    max_catch_up: int = 1,
    now: datetime | None = None,
) -> Reminder:
    """Remind ``user`` (default: the actor). Invalid timing raises InvalidInput naming the field."""
    now = now or timezone.now()
    user = user or actor
    if not Membership.objects.for_org(organization).filter(user=user).exists():
        raise InvalidInput("the person to remind is not a member of this organization", field="user")
    title = _check_text(title)
    timing = check_timing(
        TimingInput(kind=kind, cron_expression=cron_expression, timezone=timezone_name,
                    interval_seconds=interval_seconds, run_at=run_at),
        now=now, allowed_kinds=REMINDER_KINDS, default_timezone=organization.timezone,
    )
    check_policy(missed_run_policy, max_catch_up)
    fields = {k: v for k, v in timing.fields.items() if k != "event_name"}
    with transaction.atomic():
        reminder = Reminder(
            organization=organization, user=user, title=title, message=message or "",
            missed_run_policy=missed_run_policy, max_catch_up=max_catch_up, next_run_at=timing.next_run_at,
            created_by=actor, **fields,
        )
        reminder.save(force_insert=True)
        audit_record(organization=organization, actor=actor, action="reminder.created", target=reminder,
                     after={"title": title, "user": user.email, "kind": kind,
                            "next_run_at": reminder.next_run_at})
    return reminder


def reminder_update(*, reminder: Reminder, actor: User, now: datetime | None = None, **changes: Any) -> Reminder:
    """Change a reminder; new timing (or enabling it again) recomputes the next time from now."""
    if "timezone_name" in changes:
        changes["timezone"] = changes.pop("timezone_name")
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise InvalidInput(f"cannot update {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    now = now or timezone.now()
    with transaction.atomic():
        reminder = Reminder.objects.for_org(reminder.organization).select_for_update().get(pk=reminder.pk)
        current = {key: getattr(reminder, key) for key in TIMING_KEYS}
        merged = {**current, **changes}
        timing_changed = any(key in changes and changes[key] != current[key] for key in TIMING_KEYS)
        run_at_changed = ("run_at" in changes and changes["run_at"] != reminder.run_at) or (
            "kind" in changes and changes["kind"] != reminder.kind
        )
        timing = check_timing(
            TimingInput(kind=merged["kind"], cron_expression=merged.get("cron_expression") or "",
                        timezone=merged.get("timezone") or "", interval_seconds=merged.get("interval_seconds"),
                        run_at=merged.get("run_at")),
            now=now, allowed_kinds=REMINDER_KINDS, default_timezone=reminder.organization.timezone,
            run_at_changed=run_at_changed,
        )
        policy = changes.get("missed_run_policy", reminder.missed_run_policy)
        max_catch_up = changes.get("max_catch_up", reminder.max_catch_up)
        check_policy(policy, max_catch_up)
        if "title" in changes:
            reminder.title = _check_text(changes["title"])
        if "message" in changes:
            reminder.message = changes["message"] or ""
        for key, value in timing.fields.items():
            if key != "event_name":
                setattr(reminder, key, value)
        reminder.missed_run_policy = policy
        reminder.max_catch_up = max_catch_up
        enabling = "enabled" in changes and bool(changes["enabled"]) and not reminder.enabled
        if "enabled" in changes:
            reminder.enabled = bool(changes["enabled"])
        if timing_changed or enabling:
            reminder.next_run_at = timing.next_run_at
        reminder.save()
        audit_record(organization=reminder.organization, actor=actor, action="reminder.updated", target=reminder,
                     after={"fields": sorted(changes), "next_run_at": reminder.next_run_at})
    return reminder


def reminder_delete(*, reminder: Reminder, actor: User) -> None:
    with transaction.atomic():
        audit_record(organization=reminder.organization, actor=actor, action="reminder.deleted", target=reminder,
                     before={"title": reminder.title})
        Reminder.objects.for_org(reminder.organization).filter(pk=reminder.pk).delete()


def notification_mark_read(*, notification: Notification, user: User) -> Notification:
    """Mark one of ``user``'s notifications read (idempotent)."""
    if notification.user_id != user.pk:
        raise InvalidInput("this notification is not yours", field="notification")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.for_org(notification.organization).filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=notification.read_at
        )
        _push_unread(notification.organization_id, user.pk)
    return notification


def notifications_mark_all_read(*, organization: Organization, user: User) -> int:
    marked = Notification.objects.for_org(organization).filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    if marked:
        _push_unread(organization.pk, user.pk)
    return marked


def _push_unread(organization_id: int, user_id: int) -> None:
    """Tell the user's open bells the new unread count, once the change is committed."""
    from automation.notifications.push import publish_unread

    transaction.on_commit(lambda: publish_unread(organization_id=organization_id, user_id=user_id))


def reminders_tick(
    *,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    budget_seconds: float | None = TICK_BUDGET_SECONDS,
) -> TickResult:
    """Deliver every due reminder as in-app notifications (system job, every organization)."""
    result = TickResult()
    started = time.monotonic()
    while True:
        if budget_seconds is not None and time.monotonic() - started > budget_seconds:
            result.more = True
            break
        moment = now or timezone.now()
        with transaction.atomic():
            due = list(
                Reminder.objects.dangerously_unscoped()
                .select_for_update(skip_locked=True, of=("self",))
                .select_related("organization")
                .filter(enabled=True, next_run_at__lte=moment)
                .order_by("next_run_at")[:batch_size]
            )
            if not due:
                break
            result.batches += 1
            for reminder in due:
                result.schedules += 1
                result.fired += _deliver(reminder, moment)
    return result


def _deliver(reminder: Reminder, now: datetime) -> int:
    timing = timing_of(reminder)
    first = reminder.next_run_at
    assert first is not None
    limit = reminder.max_catch_up if reminder.missed_run_policy == MissedRunPolicy.CATCH_UP else 1
    due, _more = timing.due_between(first, now, limit=limit)
    if reminder.missed_run_policy == MissedRunPolicy.SKIP:
        due = [t for t in due if now - t <= grace()]
    sent = 0
    for scheduled_for in due:
        try:
            with transaction.atomic():
                Notification.objects.for_org(reminder.organization).create(
                    organization_id=reminder.organization_id, user_id=reminder.user_id, title=reminder.title,
                    message=reminder.message, reminder=reminder, scheduled_for=scheduled_for,
                )
        except IntegrityError:
            continue
        sent += 1
        _push_unread(reminder.organization_id, reminder.user_id)
    reminder.next_run_at = timing.next_after(now)
    if due:
        reminder.last_run_at = due[-1]
    reminder.run_count += sent
    reminder.save(update_fields=["next_run_at", "last_run_at", "run_count", "updated_at"])
    return sent
