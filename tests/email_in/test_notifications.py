"""Notifications: who hears about what, once; preferences per kind and channel; email, digest, weekly summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail as django_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.services.approvals import approval_request_create
from automation.models import Notification, NotificationDigest
from automation.notifications.preferences import preferences_update
from automation.notifications.services import digests_send, notification_emails_send, notify
from automation.notifications.sources import approvals_scan, due_soon_scan, weekly_summaries_send
from automation.services.tasks import dependency_add, task_complete, task_fail, task_start, task_update
from tests.automation.factories import make_manual_task

pytestmark = pytest.mark.django_db


def notes(org, **filters):
    return list(Notification.objects.for_org(org).filter(**filters).order_by("id"))


def test_assignment_notifies_the_assignee_not_the_actor(tenant_a):
    """Assigning a task tells the assignee (once per assignment); assigning yourself tells nobody."""
    org = tenant_a.organization
    task = make_manual_task(org, title="Prepare payroll", actor=tenant_a.manager, assignee=tenant_a.member)
    assert [(n.user, n.kind) for n in notes(org)] == [(tenant_a.member, "task_assigned")]
    task_update(task=task, actor=tenant_a.member, assignee=tenant_a.member)
    assert len(notes(org)) == 1
    task_update(task=task, actor=tenant_a.member, assignee=tenant_a.admin)
    assert [n.user for n in notes(org, kind="task_assigned")] == [tenant_a.member, tenant_a.admin]


def test_my_failed_task_notifies_me(tenant_a):
    """A task that fails tells its creator and assignee, but not the person who failed it."""
    org = tenant_a.organization
    task = make_manual_task(org, title="Ship order", actor=tenant_a.member, assignee=tenant_a.manager)
    task_start(task=task, actor=tenant_a.manager)
    task_fail(task=task, actor=tenant_a.manager, reason="the courier refused it")
    failed = notes(org, kind="run_failed")
    assert [n.user for n in failed] == [tenant_a.member]
    assert "the courier refused it" in failed[0].message


def test_dependency_completed_or_failed_notifies_who_waits(tenant_a):
    """When a task finishes, the owners of manual tasks waiting on it hear about it, once per event."""
    org = tenant_a.organization
    first = make_manual_task(org, title="Sign lease", actor=tenant_a.member)
    waiting = make_manual_task(org, title="Move in", actor=tenant_a.manager, assignee=tenant_a.admin)
    other = make_manual_task(org, title="Order desks", actor=tenant_a.manager)
    dependency_add(task=waiting, depends_on=first, actor=tenant_a.manager)
    dependency_add(task=other, depends_on=first, actor=tenant_a.manager)
    task_complete(task=first, actor=tenant_a.member)
    told = notes(org, kind="dependency_finished")
    assert sorted(n.user.email for n in told) == [tenant_a.admin.email, tenant_a.manager.email]
    by_manager = next(n for n in told if n.user == tenant_a.manager)
    assert "Move in" in by_manager.message
    assert "Order desks" in by_manager.message
    assert not notes(org, user=tenant_a.member, kind="dependency_finished")


def test_mentions_notify_the_members_named(tenant_a):
    """@email, @local-part and @Firstname mention members; unknown names mention nobody."""
    org = tenant_a.organization
    tenant_a.admin.full_name = "Ada Admin"
    tenant_a.admin.save()
    make_manual_task(org, title="Audit", actor=tenant_a.member,
                     description="@manager@acme.test and @ada please check; @nobody too. mail@acme.test is not one")
    assert sorted(n.user.email for n in notes(org, kind="mention")) == [tenant_a.admin.email, tenant_a.manager.email]


def test_approval_requested_notifies_deciders_once(tenant_a):
    """A pending approval notifies everyone who may decide it except the requester; scanning again adds nothing."""
    org = tenant_a.organization
    approval_request_create(organization=org, kind="task", title="Buy a laptop", requested_by=tenant_a.manager,
                            cost_estimate="1200", currency="EUR")
    assert approvals_scan() == 2  # admin and owner; the manager asked
    assert approvals_scan() == 0
    told = notes(org, kind="approval_requested")
    assert sorted(n.user.email for n in told) == [tenant_a.admin.email, tenant_a.owner.email]
    assert "1200" in told[0].message


def test_due_soon_once_per_due_date(tenant_a):
    """A task due within the window tells its assignee once; a new due date tells again."""
    org = tenant_a.organization
    now = timezone.now()
    task = make_manual_task(org, title="File taxes", actor=tenant_a.manager, assignee=tenant_a.member,
                            due_at=now + timedelta(hours=3))
    make_manual_task(org, title="Later", actor=tenant_a.manager, assignee=tenant_a.member,
                     due_at=now + timedelta(days=5))
    assert due_soon_scan(now=now) == 1
    assert due_soon_scan(now=now) == 0
    task_update(task=task, actor=tenant_a.manager, due_at=now + timedelta(hours=6))
    assert due_soon_scan(now=now) == 1
    assert [n.user for n in notes(org, kind="due_soon")] == [tenant_a.member, tenant_a.member]


def test_weekly_summary_once_a_week(tenants):
    """On Monday morning every member gets one summary of their tasks; running again that week sends none."""
    a, _b = tenants
    make_manual_task(a.organization, title="Open one", actor=a.manager, assignee=a.member,
                     due_at=datetime(2026, 11, 20, tzinfo=UTC))
    sunday = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert weekly_summaries_send(now=sunday) == 0
    assert weekly_summaries_send(now=monday) == 10  # five members in each of two organizations
    assert weekly_summaries_send(now=monday + timedelta(hours=5)) == 0
    summary = notes(a.organization, kind="weekly_summary", user=a.member)[0]
    assert summary.data["open"] == 1
    assert summary.data["overdue"] == 1
    assert summary.dedupe_key == "weekly:2026-W48"


def test_the_same_event_never_notifies_twice(tenant_a):
    """notify() with a used key returns None; the database refuses a second row with that key."""
    org = tenant_a.organization
    first = notify(organization=org, user_id=tenant_a.member.pk, kind="mention", title="x", dedupe_key="k:1")
    assert first is not None
    assert notify(organization=org, user_id=tenant_a.member.pk, kind="mention", title="x", dedupe_key="k:1") is None
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.for_org(org).create(organization=org, user=tenant_a.member, title="y",
                                                 dedupe_key="k:1")
    assert notify(organization=org, user_id=tenant_a.admin.pk, kind="mention", title="x", dedupe_key="k:1")


def test_preferences_choose_channels_per_kind(tenant_a):
    """Off everywhere: no notification. Email only: hidden from the bell. Daily: waits for the digest."""
    org = tenant_a.organization
    preferences_update(organization=org, user=tenant_a.member, changes=[
        {"kind": "mention", "in_app": False, "email": "off"},
        {"kind": "task_assigned", "in_app": False, "email": "immediate"},
        {"kind": "run_failed", "email": "daily"},
    ])
    assert notify(organization=org, user_id=tenant_a.member.pk, kind="mention", title="m", dedupe_key="1") is None
    email_only = notify(organization=org, user_id=tenant_a.member.pk, kind="task_assigned", title="a",
                        dedupe_key="2")
    assert (email_only.in_app, email_only.email_status) == (False, "pending")
    daily = notify(organization=org, user_id=tenant_a.member.pk, kind="run_failed", title="f", dedupe_key="3")
    assert (daily.in_app, daily.email_status) == (True, "digest")


def test_immediate_email_is_sent_once(tenant_a):
    """A pending email goes out once, with the link; the job sending again sends nothing."""
    django_mail.outbox.clear()
    org = tenant_a.organization
    task = make_manual_task(org, title="Call the bank", actor=tenant_a.manager, assignee=tenant_a.member)
    assert notification_emails_send() == 1
    assert notification_emails_send() == 0
    sent = django_mail.outbox[-1]
    assert sent.to == [tenant_a.member.email]
    assert "Call the bank" in sent.subject
    assert f"https://staffer.example/orgs/acme/tasks/{task.pk}/" in sent.body
    assert sent.reply_to == [f"tasks+acme@{'inbound.test'}"]
    assert notes(org, kind="task_assigned")[0].email_status == "sent"


def test_daily_digest_collects_and_goes_out_once_a_day(tenant_a):
    """Daily items wait until the digest hour, go out in one email, and once per day only."""
    django_mail.outbox.clear()
    org = tenant_a.organization
    for key in ("a", "b"):
        notify(organization=org, user_id=tenant_a.member.pk, kind="due_soon", title=f"Due soon {key}",
               dedupe_key=key)
    early = datetime(2030, 1, 7, 7, 0, tzinfo=UTC)
    assert digests_send(now=early).sent == 0
    morning = early.replace(hour=9)
    result = digests_send(now=morning)
    assert (result.sent, result.items) == (1, 2)
    digest_email = django_mail.outbox[-1]
    assert "Due soon a" in digest_email.body
    assert "Due soon b" in digest_email.body
    notify(organization=org, user_id=tenant_a.member.pk, kind="due_soon", title="Due soon c", dedupe_key="c")
    assert digests_send(now=morning + timedelta(hours=2)).sent == 0
    assert digests_send(now=morning + timedelta(days=1)).items == 1
    assert NotificationDigest.objects.for_org(org).filter(user=tenant_a.member).count() == 2
    assert len(django_mail.outbox) == 2


def test_digest_hour_is_the_organizations_local_time(tenant_a):
    """08:00 in Tokyo is 23:00 UTC the day before: the digest follows the organization's time zone."""
    org = tenant_a.organization
    org.timezone = "Asia/Tokyo"
    org.save()
    notify(organization=org, user_id=tenant_a.member.pk, kind="due_soon", title="x", dedupe_key="tz")
    assert digests_send(now=datetime(2030, 1, 6, 22, 0, tzinfo=UTC)).sent == 0  # 07:00 in Tokyo
    assert digests_send(now=datetime(2030, 1, 6, 23, 30, tzinfo=UTC)).sent == 1
    assert NotificationDigest.objects.for_org(org).get().period.isoformat() == "2030-01-07"


class RefusingBackend:
    """An email backend whose server refuses the next ``refusals`` sends (then accepts, into the outbox)."""

    refusals = 0

    def __init__(self, *args, **kwargs) -> None:
        pass

    def send_messages(self, messages):
        if RefusingBackend.refusals > 0:
            RefusingBackend.refusals -= 1
            raise OSError("451 4.3.0 mail server busy")
        django_mail.outbox.extend(messages)
        return len(messages)


def test_a_digest_the_mail_server_refused_is_sent_again_later_with_the_same_items(tenant_a, settings):
    """Refused at the digest hour: kept as failed with the reason, sent again after 5 minutes (not before), with
    the same notifications, once; the items never go into tomorrow's digest twice."""
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    django_mail.outbox.clear()
    RefusingBackend.refusals = 1
    org = tenant_a.organization
    for key in ("a", "b"):
        notify(organization=org, user_id=tenant_a.member.pk, kind="due_soon", title=f"Due soon {key}",
               dedupe_key=key)
    morning = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    assert digests_send(now=morning).sent == 0
    digest = NotificationDigest.objects.for_org(org).get()
    assert (digest.status, digest.attempts, digest.error) == ("failed", 1, "451 4.3.0 mail server busy")
    assert digest.next_attempt_at == morning + timedelta(minutes=5)
    assert digests_send(now=morning + timedelta(minutes=4)).sent == 0
    result = digests_send(now=morning + timedelta(minutes=5))
    assert (result.sent, result.items) == (1, 2)
    digest.refresh_from_db()
    assert (digest.status, digest.attempts, digest.next_attempt_at) == ("sent", 2, None)
    [email] = django_mail.outbox
    assert "Due soon a" in email.body
    assert "Due soon b" in email.body
    assert digests_send(now=morning + timedelta(hours=1)).sent == 0
    assert digests_send(now=morning + timedelta(days=1)).sent == 0
    assert len(django_mail.outbox) == 1


def test_a_digest_is_given_up_after_five_refusals(tenant_a, settings):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    RefusingBackend.refusals = 99
    org = tenant_a.organization
    notify(organization=org, user_id=tenant_a.member.pk, kind="due_soon", title="Due soon", dedupe_key="x")
    now = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    for _ in range(8):
        digests_send(now=now)
        now += timedelta(hours=2)
    digest = NotificationDigest.objects.for_org(org).get()
    assert (digest.status, digest.attempts, digest.next_attempt_at) == ("failed", 5, None)
    RefusingBackend.refusals = 0
