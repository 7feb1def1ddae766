"""Tenant schedules, event triggers, reminders and in-app notifications.

Tenant schedules live in this indexed table and are dispatched by one system
ticker (``automation.services.schedules.schedules_tick``), never by one
django-celery-beat row each. Timing rules are in
``automation.services.schedules_clock``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.tenancy import OrganizationOwned


class ScheduleKind(models.TextChoices):
    CRON = "cron", "Cron expression"
    INTERVAL = "interval", "Fixed interval"
    ONE_OFF = "one_off", "Once, at a set time"
    EVENT = "event", "When a named event fires"


class MissedRunPolicy(models.TextChoices):
    SKIP = "skip", "Skip missed runs"
    RUN_ONCE = "run_once", "Run once for all missed runs"
    CATCH_UP = "catch_up", "Catch up every missed run (bounded)"


MAX_CATCH_UP = 100


class Recurrence(OrganizationOwned):
    """When something recurs; ``next_run_at`` (UTC) is what the ticker looks at."""

    kind = models.CharField(max_length=10, choices=ScheduleKind.choices)
    cron_expression = models.CharField(max_length=120, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA zone the cron expression reads in.")
    interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    run_at = models.DateTimeField(null=True, blank=True, help_text="One-off time, or the first interval run.")
    next_run_at = models.DateTimeField(null=True, blank=True)
    missed_run_policy = models.CharField(
        max_length=10, choices=MissedRunPolicy.choices, default=MissedRunPolicy.RUN_ONCE
    )
    max_catch_up = models.PositiveSmallIntegerField(default=10)
    enabled = models.BooleanField(default=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    run_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class TaskTemplate(models.Model):
    """The task a schedule or trigger creates."""

    task_title = models.CharField(max_length=300)
    task_description = models.TextField(blank=True)
    task_executor = models.CharField(max_length=64, default="noop")
    task_parameters = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    task_execution_type = models.CharField(max_length=16, default="fully_automated")
    task_priority = models.SmallIntegerField(default=50)

    class Meta:
        abstract = True


class Schedule(Recurrence, TaskTemplate):
    """A tenant's schedule: creates a task from its template each time it fires."""

    name = models.CharField(max_length=200)
    event_name = models.CharField(max_length=100, blank=True)
    last_task = models.ForeignKey(
        "automation.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(
                fields=["next_run_at"],
                name="schedule_due",
                condition=models.Q(enabled=True, next_run_at__isnull=False),
            ),
            models.Index(
                fields=["organization", "event_name"], name="schedule_event", condition=models.Q(kind="event")
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=[k.value for k in ScheduleKind]), name="schedule_kind"),
            models.CheckConstraint(
                condition=~models.Q(kind="cron") | ~models.Q(cron_expression=""), name="schedule_cron_has_expression"
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="interval") | models.Q(interval_seconds__gte=1, run_at__isnull=False),
                name="schedule_interval_has_period",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="one_off") | models.Q(run_at__isnull=False), name="schedule_one_off_has_time"
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="event") | ~models.Q(event_name=""), name="schedule_event_has_name"
            ),
            models.CheckConstraint(
                condition=models.Q(max_catch_up__gte=1, max_catch_up__lte=MAX_CATCH_UP), name="schedule_catch_up_bound"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ScheduleFiring(OrganizationOwned):
    """One firing of a schedule. Unique per (schedule, scheduled time): a run is never created twice."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="firings")
    scheduled_for = models.DateTimeField()
    fired_at = models.DateTimeField()
    task = models.ForeignKey("automation.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-scheduled_for", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "scheduled_for"], name="schedulefiring_once"),
        ]
        indexes = [models.Index(fields=["fired_at"], name="schedulefiring_fired")]

    def __str__(self) -> str:
        return f"{self.schedule_id} @ {self.scheduled_for.isoformat()}"


class TriggerKind(models.TextChoices):
    WEBHOOK = "webhook", "Inbound webhook"
    TASK_COMPLETED = "task_completed", "A task completed"
    TASK_FAILED = "task_failed", "A task failed"
    EVENT = "event", "A named event"


class Trigger(OrganizationOwned, TaskTemplate):
    """Creates a task when something happens: a signed webhook call, a task's outcome, a named event.

    SECURITY: the webhook secret is stored encrypted (AES-GCM, see
    ``tools.crypto``) and bound to this trigger's public id.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=TriggerKind.choices)
    event_name = models.CharField(max_length=100, blank=True)
    conditions = models.JSONField(
        default=dict, blank=True, encoder=DjangoJSONEncoder,
        help_text="Exact matches the event's payload must have, e.g. {\"executor\": \"tool\"}.",
    )
    secret_key_id = models.CharField(max_length=40, blank=True)
    secret_nonce = models.BinaryField(null=True, blank=True)
    secret_ciphertext = models.BinaryField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    fire_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["organization", "kind", "event_name"], name="trigger_lookup",
                         condition=models.Q(enabled=True)),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=[k.value for k in TriggerKind]), name="trigger_kind"),
            models.CheckConstraint(
                condition=~models.Q(kind="event") | ~models.Q(event_name=""), name="trigger_event_has_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TriggerDelivery(OrganizationOwned):
    """One accepted firing of a trigger and the task it created.

    ``signature`` (webhooks) is unique per trigger, so a replayed call is refused;
    ``depth`` counts trigger-created tasks in a chain, so triggers on task
    outcomes cannot loop forever.
    """

    trigger = models.ForeignKey(Trigger, on_delete=models.CASCADE, related_name="deliveries")
    received_at = models.DateTimeField()
    signature = models.CharField(max_length=64, null=True, blank=True)
    source_task = models.ForeignKey(
        "automation.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    task = models.ForeignKey("automation.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    depth = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["trigger", "signature"], name="triggerdelivery_no_replay",
                condition=models.Q(signature__isnull=False),
            ),
        ]
        indexes = [models.Index(fields=["task"], name="triggerdelivery_task")]

    def __str__(self) -> str:
        return f"{self.trigger_id} @ {self.received_at.isoformat()}"


class Reminder(Recurrence):
    """A one-off or recurring notification to a user (in-app now; email with the email channel)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["next_run_at", "id"]
        indexes = [
            models.Index(
                fields=["next_run_at"],
                name="reminder_due",
                condition=models.Q(enabled=True, next_run_at__isnull=False),
            ),
            models.Index(fields=["organization", "user"], name="reminder_user"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["cron", "interval", "one_off"]), name="reminder_kind"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class Notification(OrganizationOwned):
    """An in-app notification for one user."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    reminder = models.ForeignKey(Reminder, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    scheduled_for = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # What the notification is about and how it is delivered (automation.notifications).
    kind = models.CharField(max_length=32, default="reminder")
    dedupe_key = models.CharField(
        max_length=200, null=True, blank=True, help_text="One notification per user and key: never twice."
    )
    link = models.CharField(max_length=500, blank=True)
    task = models.ForeignKey("automation.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    in_app = models.BooleanField(default=True, help_text="Shown in the bell (the user's preference for this kind).")
    email_status = models.CharField(
        max_length=10, blank=True, default="", help_text="'', pending, digest, sending, sent, digested, failed."
    )
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "user", "-created_at"], name="notification_inbox"),
            models.Index(fields=["organization", "user"], name="notification_unread",
                         condition=models.Q(read_at__isnull=True, in_app=True)),
            models.Index(fields=["email_status", "id"], name="notification_email_due",
                         condition=models.Q(email_status__in=["pending", "digest"])),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["reminder", "scheduled_for"], name="notification_reminder_once",
                condition=models.Q(reminder__isnull=False, scheduled_for__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["organization", "user", "dedupe_key"], name="notification_dedupe_once",
                condition=models.Q(dedupe_key__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.title
