"""What notifies whom: the TaskEvent listener, and the scans run by system jobs.

The listener runs inside the transaction that appends the event, so a
notification exists exactly when the change does; its work is in a
savepoint and a failure there never undoes the change. Each notification
carries a dedupe key unique per user (``task:<id>:<what>:<event sequence>``,
``approval:<id>``, ``task:<id>:due_soon:<due timestamp>``,
``weekly:<ISO year>-W<week>``), so nothing notifies twice.

To keep people from being flooded: nobody is told about their own action;
a failed workflow step is not announced to whoever will hear about its
parent's failure; "a dependency finished" concerns only tasks a person
starts or approves (manual or semi-automated) or one assigned to a person;
a person gets one notification per event, the most specific.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from accounts.models import ApprovalRequest, ApprovalStatus, Membership, Organization, User
from accounts.roles import ROLE_SCOPES
from automation.email_in import conf as mail_conf
from automation.models import (
    AssigneeKind,
    ExecutionType,
    Notification,
    Task,
    TaskDependency,
    TaskEvent,
    TaskStatus,
)
from automation.notifications.models import NotificationKind, NotificationScan
from automation.notifications.services import existing_keys, notify, notify_many, zone_of
from automation.services.status import ACTIVE

logger = logging.getLogger(__name__)

K = NotificationKind
S = TaskStatus
_MENTION = re.compile(r"(?<![\w.@/])@([A-Za-z0-9][\w.+-]*(?:@[\w-]+(?:\.[\w-]+)+)?)")
MAX_MENTIONS = 20
MAX_DEPENDENTS = 200
APPROVAL_SETTLE = timedelta(minutes=5)
APPROVAL_BATCH = 500


def due_soon_window() -> timedelta:
    return timedelta(hours=float(getattr(settings, "NOTIFICATIONS_DUE_SOON_HOURS", 24)))


def weekly_summary_at() -> tuple[int, int]:
    """(weekday, hour) in the organization's time zone: Monday 08:00 unless set."""
    return (int(getattr(settings, "NOTIFICATIONS_WEEKLY_WEEKDAY", 0)),
            int(getattr(settings, "NOTIFICATIONS_WEEKLY_HOUR", 8)))


# --- mentions ------------------------------------------------------------------------------


def mentioned_users(organization: Organization, text: str) -> set[int]:
    """Members named as ``@email``, ``@local-part`` or ``@Firstname`` (a name must match one member only)."""
    tokens = {t.rstrip(".").lower() for t in _MENTION.findall(text or "")[:MAX_MENTIONS]}
    if not tokens:
        return set()
    members = list(
        Membership.objects.for_org(organization).filter(user__is_active=True)
        .values_list("user_id", "user__email", "user__full_name")[:2000]
    )
    found: set[int] = set()
    for token in tokens:
        if "@" in token:
            found |= {uid for uid, email, _ in members if email.lower() == token}
            continue
        by_local = [uid for uid, email, _ in members if email.lower().partition("@")[0] == token]
        by_first = [uid for uid, _, name in members if name and name.split()[0].lower() == token]
        for matches in (by_local, by_first):
            if len(set(matches)) == 1:
                found.add(matches[0])
                break
    return found


# --- the TaskEvent listener --------------------------------------------------------------


def _interesting(event: TaskEvent, task: Task) -> bool:
    payload = event.payload or {}
    if event.type == "created":
        return bool(payload.get("assignee_user")) or "@" in (task.description or "")
    if event.type == "updated":
        return "assignee_user" in (payload.get("fields") or [])
    if event.type == "status_changed":
        return payload.get("to") in (S.COMPLETED, S.FAILED)
    if event.type == "comment":
        return "@" in str(payload.get("text", ""))
    return False


def on_task_event(event: TaskEvent) -> None:
    """Registered with :func:`automation.services.events.register_event_listener`."""
    task = event.task
    if not _interesting(event, task):
        return
    try:
        with transaction.atomic():
            _handle(event, task)
    except DatabaseError:
        logger.exception("notifications for event %s of task %s failed", event.sequence, task.pk)


def _handle(event: TaskEvent, task: Task) -> None:
    organization = task.organization
    actor = event.actor_id
    seq = event.sequence
    told: set[int] = set()
    if event.type in ("created", "updated") and task.assignee_kind == AssigneeKind.USER:
        assignee = task.assignee_user_id
        if assignee and assignee != actor:
            notify(organization=organization, user_id=assignee, kind=K.TASK_ASSIGNED, task=task,
                   dedupe_key=f"task:{task.pk}:assigned:{seq}", title=f"Assigned to you: {task.title}",
                   message=f"{event.actor_label} assigned you task #{task.pk}: {task.title}",
                   data={"event": seq})
            told.add(assignee)
    if event.type in ("created", "comment"):
        text = task.description if event.type == "created" else str((event.payload or {}).get("text", ""))
        mentioned = mentioned_users(organization, text) - told - {actor}
        excerpt = text.strip()[:300]
        notify_many(organization=organization, user_ids=mentioned, kind=K.MENTION, task=task,
                    dedupe_key=f"task:{task.pk}:mention:{seq}", title=f"You were mentioned on: {task.title}",
                    message=f"{event.actor_label} mentioned you on task #{task.pk}:\n{excerpt}",
                    data={"event": seq})
    if event.type == "status_changed":
        _finished(event, task, actor)


def _owners(task: Task) -> set[int]:
    return {uid for uid in (task.created_by_id, task.assignee_user_id) if uid}


def _finished(event: TaskEvent, task: Task, actor: int | None) -> None:
    organization = task.organization
    outcome = event.payload.get("to")
    seq = event.sequence
    told: set[int] = set()
    if outcome == S.FAILED:
        owners = _owners(task) - {actor}
        if task.parent_id is not None:
            parent = Task.objects.for_org(organization).filter(pk=task.parent_id).first()
            if parent is not None:
                owners -= _owners(parent)  # they hear about the parent's failure
        reason = task.failure_reason or event.payload.get("reason", "")
        notify_many(organization=organization, user_ids=owners, kind=K.RUN_FAILED, task=task,
                    dedupe_key=f"task:{task.pk}:failed:{seq}", title=f"Failed: {task.title}",
                    message=f"Task #{task.pk} {task.title!r} failed: {reason}"[:2000],
                    data={"event": seq, "reason": reason[:500]})
        told |= owners
    dependents = list(
        TaskDependency.objects.for_org(organization).filter(depends_on=task)
        .values_list("task_id", "task__title", "task__created_by_id", "task__assignee_user_id",
                     "task__execution_type", "task__status")[:MAX_DEPENDENTS]
    )
    waiting: dict[int, list[str]] = {}
    for pk, title, creator, assignee, execution_type, status in dependents:
        if status not in ACTIVE:
            continue
        concerned = {assignee} if assignee else set()
        if execution_type != ExecutionType.FULLY_AUTOMATED and creator:
            concerned.add(creator)
        for uid in concerned - told - {actor, None}:
            waiting.setdefault(uid, []).append(f"#{pk} {title}")
    verb = "completed" if outcome == S.COMPLETED else "failed"
    for uid, titles in waiting.items():
        notify(organization=organization, user_id=uid, kind=K.DEPENDENCY_FINISHED, task=task,
               dedupe_key=f"task:{task.pk}:dependency:{seq}",
               title=f"A task yours waits for {verb}: {task.title}",
               message=f"Task #{task.pk} {task.title!r} {verb}. Waiting on it: {', '.join(titles[:10])}"
                       + (f" and {len(titles) - 10} more" if len(titles) > 10 else ""),
               data={"event": seq, "outcome": verb, "dependents": len(titles)})


# --- approvals requested (system job) -------------------------------------------------------


def _deciders(organization: Organization, approval: ApprovalRequest) -> set[int]:
    roles = [role for role, scopes in ROLE_SCOPES.items() if approval.required_scope in scopes]
    users = set(
        Membership.objects.for_org(organization).filter(role__in=roles, user__is_active=True)
        .values_list("user_id", flat=True)
    )
    return users - {approval.requested_by_id}


def approvals_scan(*, now: datetime | None = None, limit: int = APPROVAL_BATCH) -> int:
    """Notify deciders of new pending approvals (every organization); returns how many notifications.

    Reads approvals after a cursor; the cursor only passes approvals older
    than ``APPROVAL_SETTLE``, so one whose transaction committed late is still
    seen, and dedupe keys make reading it again harmless.
    """
    now = now or timezone.now()
    with transaction.atomic():
        NotificationScan.objects.get_or_create(name="approvals")
        scan = NotificationScan.objects.select_for_update(skip_locked=True).filter(name="approvals").first()
        if scan is None:
            return 0  # another scan is running
        approvals = list(
            ApprovalRequest.objects.dangerously_unscoped().select_related("organization")
            .filter(pk__gt=scan.last_id).order_by("pk")[:limit]
        )
        created = 0
        settled, advancing = scan.last_id, True
        keys = existing_keys(keys=[f"approval:{a.pk}" for a in approvals])
        for approval in approvals:
            if approval.status == ApprovalStatus.PENDING:
                created += _approval_notify(approval, keys)
            advancing = advancing and approval.created_at < now - APPROVAL_SETTLE
            if advancing:
                settled = approval.pk
        if settled != scan.last_id:
            scan.last_id = settled
            scan.save(update_fields=["last_id", "updated_at"])
    return created


def _approval_notify(approval: ApprovalRequest, keys: set[tuple[int, int, str]]) -> int:
    organization = approval.organization
    key = f"approval:{approval.pk}"
    users = {uid for uid in _deciders(organization, approval) if (organization.pk, uid, key) not in keys}
    cost = f" ({approval.cost_estimate} {approval.currency})" if approval.cost_estimate else ""
    message = f"{approval.requested_by_label} asks for your approval{cost}: {approval.title}\n{approval.reason}"
    return len(notify_many(
        organization=organization, user_ids=users, kind=K.APPROVAL_REQUESTED, dedupe_key=key,
        title=f"Approval requested: {approval.title}", message=message[:2000],
        link=f"{mail_conf.site_url()}/orgs/{organization.slug}/approvals/", data={"approval": approval.pk},
    ))


# --- due soon (system job) --------------------------------------------------------------------


def due_soon_scan(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Tell the assignee (else the creator) of each unfinished task due within the window; once per due date."""
    now = now or timezone.now()
    tasks = list(
        Task.objects.dangerously_unscoped().select_related("organization")
        .filter(due_at__gt=now, due_at__lte=now + due_soon_window(), status__in=ACTIVE)
        .order_by("due_at")[:limit]
    )
    keyed = [(t, f"task:{t.pk}:due_soon:{int(t.due_at.timestamp())}") for t in tasks if t.due_at]
    seen = existing_keys(keys=[key for _, key in keyed])
    created = 0
    for task, key in keyed:
        user_id = task.assignee_user_id or task.created_by_id
        if not user_id or (task.organization_id, user_id, key) in seen:
            continue
        hours = max(1, round((task.due_at - now).total_seconds() / 3600)) if task.due_at else 0
        with transaction.atomic():
            created += notify(
                organization=task.organization, user_id=user_id, kind=K.DUE_SOON, task=task, dedupe_key=key,
                title=f"Due soon: {task.title}",
                message=f"Task #{task.pk} {task.title!r} is due in about {hours} h ({task.due_at:%Y-%m-%d %H:%M} UTC).",
                data={"due_at": task.due_at.isoformat() if task.due_at else None},
            ) is not None
    return created


# --- weekly summary (system job) ----------------------------------------------------------------


def weekly_summary(*, organization: Organization, user: User, now: datetime) -> dict[str, Any]:
    """Counts about ``user``'s tasks: open, overdue, due in the next 7 days, completed and failed last 7 days."""
    mine = Task.objects.for_org(organization).filter(assignee_user=user) | Task.objects.for_org(organization).filter(
        assignee_user__isnull=True, created_by=user
    )
    week_ago, week_ahead = now - timedelta(days=7), now + timedelta(days=7)
    open_tasks = mine.filter(status__in=ACTIVE)
    return {
        "open": open_tasks.count(),
        "overdue": open_tasks.filter(due_at__lt=now).count(),
        "due_this_week": open_tasks.filter(due_at__gte=now, due_at__lte=week_ahead).count(),
        "completed_last_week": mine.filter(status=S.COMPLETED, completed_at__gte=week_ago).count(),
        "failed_last_week": mine.filter(status=S.FAILED, failed_at__gte=week_ago).count(),
    }


def weekly_summaries_send(*, now: datetime | None = None) -> int:
    """Send this week's summary to every member whose organization-local time has reached it; once per ISO week."""
    now = now or timezone.now()
    weekday, hour = weekly_summary_at()
    created = 0
    for organization in Organization.objects.order_by("pk").iterator():
        local = now.astimezone(zone_of(organization))
        if local.weekday() != weekday or local.hour < hour:
            continue
        year, week, _ = local.isocalendar()
        key = f"weekly:{year}-W{week:02d}"
        done = set(
            Membership.objects.for_org(organization).filter(
                user__in=_users_with_key(organization, key)
            ).values_list("user_id", flat=True)
        )
        members = Membership.objects.for_org(organization).filter(user__is_active=True).select_related("user")
        for membership in members.exclude(user_id__in=done).order_by("pk"):
            counts = weekly_summary(organization=organization, user=membership.user, now=now)
            lines = [f"Open: {counts['open']}", f"Overdue: {counts['overdue']}",
                     f"Due in the next 7 days: {counts['due_this_week']}",
                     f"Completed in the last 7 days: {counts['completed_last_week']}",
                     f"Failed in the last 7 days: {counts['failed_last_week']}"]
            with transaction.atomic():
                created += notify(
                    organization=organization, user_id=membership.user_id, kind=K.WEEKLY_SUMMARY, dedupe_key=key,
                    title=f"Your week: {counts['open']} open, {counts['overdue']} overdue",
                    message="\n".join(lines), link=f"{mail_conf.site_url()}/orgs/{organization.slug}/tasks/",
                    data=counts,
                ) is not None
    return created


def _users_with_key(organization: Organization, key: str) -> Any:
    return Notification.objects.for_org(organization).filter(dedupe_key=key).values("user_id")
