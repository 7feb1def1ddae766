from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.tenancy import OrganizationOwned
from tools.types import CompensationStatus, Outcome, SideEffect


class ToolCall(OrganizationOwned):
    """One invocation of a tool, whatever its outcome.

    ``arguments`` are stored with secrets redacted; ``arguments_hash`` is the
    SHA-256 of the exact arguments. A call that reached execution is
    ``claimed``: its idempotency key (and its approval) cannot be claimed again,
    so a retry returns this row instead of acting twice.
    """

    tool_name = models.CharField(max_length=64, db_index=True)
    side_effect = models.CharField(max_length=10, choices=SideEffect.choices, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=40, blank=True, help_text="api, agent, workflow, …")
    group = models.CharField(max_length=100, blank=True, db_index=True, help_text="Compensated together on rollback.")
    task_id = models.CharField(max_length=64, blank=True)
    step_id = models.CharField(max_length=64, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    claimed = models.BooleanField(default=False)
    arguments = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    arguments_hash = models.CharField(max_length=64, blank=True)
    result = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    reason_code = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)
    cost_estimate = models.DecimalField(max_digits=14, decimal_places=4, default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True,
                               help_text="What the call cost, when the tool reports it.")
    amount = models.BigIntegerField(null=True, blank=True, help_text="Money moved, in minor units.")
    currency = models.CharField(max_length=3, blank=True)
    approval = models.ForeignKey(
        "accounts.ApprovalRequest", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    metadata = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    compensation_status = models.CharField(
        max_length=16, choices=CompensationStatus.choices, blank=True, default=CompensationStatus.NONE
    )
    compensation_result = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    compensated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="toolcall_org_time"),
            models.Index(fields=["organization", "currency", "created_at"], name="toolcall_org_money",
                         condition=models.Q(amount__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"],
                condition=models.Q(claimed=True) & ~models.Q(idempotency_key=""),
                name="toolcall_idempotency_key_once",
            ),
            models.UniqueConstraint(
                fields=["approval"],
                condition=models.Q(claimed=True, approval__isnull=False),
                name="toolcall_approval_used_once",
            ),
            models.CheckConstraint(
                condition=models.Q(outcome__in=[o.value for o in Outcome]), name="toolcall_outcome_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(amount__isnull=True) | models.Q(amount__gte=0), name="toolcall_amount_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} #{self.pk} ({self.outcome})"
