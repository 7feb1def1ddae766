"""Engine state kept beside the tasks: the side-effect outbox, circuit breakers, concurrency limits."""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.tenancy import OrganizationOwned


class SideEffectStatus(models.TextChoices):
    PENDING = "pending", "Pending delivery"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Delivery failed"


class SideEffect(OrganizationOwned):
    """An effect a step asked for (an email, an HTTP POST, a payment): the outbox.

    Written in the same transaction as the step's state change, under a unique
    idempotency key built from the task and an attempt-independent step key,
    so a retried or resumed step never records (or delivers) it twice.
    """

    task = models.ForeignKey("automation.Task", on_delete=models.PROTECT, related_name="side_effects")
    run = models.ForeignKey("automation.TaskRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    key = models.CharField(max_length=200, help_text="Attempt-independent step key given by the executor.")
    idempotency_key = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=16, choices=SideEffectStatus.choices, default=SideEffectStatus.PENDING)
    delivery_attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["task", "key"], name="sideeffect_unique_step_key")]
        indexes = [
            models.Index(fields=["created_at"], condition=models.Q(status="pending"), name="sideeffect_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.idempotency_key}"


class BreakerState(models.TextChoices):
    CLOSED = "closed", "Closed"
    OPEN = "open", "Open"
    HALF_OPEN = "half_open", "Half-open (one probe allowed)"


class CircuitBreaker(OrganizationOwned):
    """Failure state of one executor or integration in one organization."""

    key = models.CharField(max_length=120)
    state = models.CharField(max_length=16, choices=BreakerState.choices, default=BreakerState.CLOSED)
    consecutive_failures = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    probe_task = models.ForeignKey(
        "automation.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["organization", "key"], name="circuitbreaker_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}: {self.state}"


class ConcurrencyLimit(OrganizationOwned):
    """An organization's own cap on tasks in progress (the setting is the default)."""

    max_in_progress = models.PositiveIntegerField()

    class Meta:
        ordering = ["organization_id"]
        constraints = [models.UniqueConstraint(fields=["organization"], name="concurrencylimit_one_per_org")]

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.max_in_progress}"
