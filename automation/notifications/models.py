"""Per-user notification preferences, sent digests, and the scan cursor of the system jobs."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.tenancy import OrganizationOwned


class NotificationKind(models.TextChoices):
    TASK_ASSIGNED = "task_assigned", "A task was assigned to me"
    DUE_SOON = "due_soon", "A task of mine is due soon"
    APPROVAL_REQUESTED = "approval_requested", "My approval is requested"
    RUN_FAILED = "run_failed", "My task failed"
    DEPENDENCY_FINISHED = "dependency_finished", "A task mine waits for completed or failed"
    MENTION = "mention", "I was mentioned"
    WEEKLY_SUMMARY = "weekly_summary", "Weekly summary of my tasks"
    MAIL_QUARANTINED = "mail_quarantined", "Inbound mail was quarantined (admins)"
    REMINDER = "reminder", "A reminder of mine"


class EmailMode(models.TextChoices):
    OFF = "off", "No email"
    IMMEDIATE = "immediate", "An email at once"
    DAILY = "daily", "In the daily digest"


class NotificationPreference(OrganizationOwned):
    """How one user wants one kind of notification: in the bell, and by email (at once, daily, never)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    in_app = models.BooleanField(default=True)
    email = models.CharField(max_length=10, choices=EmailMode.choices, default=EmailMode.IMMEDIATE)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user", "kind"], name="notificationpref_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}: in_app={self.in_app} email={self.email}"


class DigestStatus(models.TextChoices):
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class NotificationDigest(OrganizationOwned):
    """One daily digest email of one user; unique per day, so a digest is never sent twice."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    period = models.DateField(help_text="The organization-local day it covers.")
    status = models.CharField(max_length=8, choices=DigestStatus.choices, default=DigestStatus.SENDING)
    items = models.JSONField(default=list, blank=True, help_text="Ids of the notifications it holds.")
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When a failed digest is sent again (empty: no more attempts)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user", "period"], name="notificationdigest_once_a_day"),
        ]

    def __str__(self) -> str:
        return f"digest {self.period} for {self.user_id}"


class NotificationScan(models.Model):
    """How far a system job has read an append-only table (every organization: not tenant data)."""

    name = models.CharField(max_length=60, unique=True)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_id}"
