"""Approval requests: a person decides before something with consequences runs."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.roles import Scope
from accounts.tenancy import OrganizationOwned


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    VOIDED = "voided", "Voided"


# From each status, the statuses it may move to. ``approved -> voided`` is the
# arguments changing after the decision; every other decided status is final.
# A database trigger (see the migration) enforces the same table.
APPROVAL_TRANSITIONS: dict[str, frozenset[str]] = {
    ApprovalStatus.PENDING: frozenset(
        {ApprovalStatus.APPROVED, ApprovalStatus.REJECTED, ApprovalStatus.EXPIRED, ApprovalStatus.VOIDED}
    ),
    ApprovalStatus.APPROVED: frozenset({ApprovalStatus.VOIDED}),
    ApprovalStatus.REJECTED: frozenset(),
    ApprovalStatus.EXPIRED: frozenset(),
    ApprovalStatus.VOIDED: frozenset(),
}


class ApprovalRequest(OrganizationOwned):
    """What is asked, why, by whom, at what cost, with exactly which arguments.

    ``arguments_hash`` is the SHA-256 of the canonical JSON of ``arguments``; a
    change of the arguments after the request voids it.
    """

    kind = models.CharField(max_length=40, db_index=True, help_text="task, tool_call, plan, budget, …")
    subject_type = models.CharField(max_length=100, blank=True, help_text="What waits on the decision, e.g. 'task'.")
    subject_id = models.CharField(max_length=64, blank=True)
    title = models.CharField(max_length=200, help_text="What will happen if approved.")
    reason = models.TextField(blank=True, help_text="Why it is asked.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requested_by_label = models.CharField(max_length=200, blank=True, help_text="Who asked (a user, an agent, …).")
    cost_estimate = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    arguments = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    arguments_hash = models.CharField(max_length=64)
    financial = models.BooleanField(default=False, help_text="Moves money: the requester may not approve it.")
    required_scope = models.CharField(max_length=40, default=Scope.APPROVALS_DECIDE)
    status = models.CharField(max_length=10, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decision_reason = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the decision handlers ran; empty until they succeed."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "status", "-created_at"], name="approval_org_status"),
            models.Index(fields=["subject_type", "subject_id"], name="approval_subject"),
            models.Index(
                fields=["expires_at"], name="approval_pending_expiry", condition=models.Q(status="pending")
            ),
            models.Index(
                fields=["decided_at"],
                name="approval_unnotified",
                condition=models.Q(notified_at__isnull=True) & ~models.Q(status="pending"),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in ApprovalStatus]), name="approval_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status="pending", decided_at__isnull=True)
                | (~models.Q(status="pending") & models.Q(decided_at__isnull=False)),
                name="approval_decided_at_matches_status",
            ),
            models.CheckConstraint(
                condition=models.Q(cost_estimate__isnull=True) | models.Q(cost_estimate__gte=0),
                name="approval_cost_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.status})"

    @property
    def is_decided(self) -> bool:
        return self.status != ApprovalStatus.PENDING
