from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.tenancy import OrganizationOwned


class PaymentBudget(OrganizationOwned):
    """Limits on the money tools may move, per currency, in minor units.

    An empty limit means none of that kind. An alert is raised when spending
    crosses 80% of a daily or monthly limit; at 100% further payments are refused.
    With no budget for a currency, payments in it are refused (fail closed).
    """

    currency = models.CharField(max_length=3)
    per_action_limit = models.BigIntegerField(null=True, blank=True)
    daily_limit = models.BigIntegerField(null=True, blank=True)
    monthly_limit = models.BigIntegerField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["currency"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "currency"], name="paymentbudget_one_per_currency"),
            models.CheckConstraint(
                condition=(models.Q(per_action_limit__isnull=True) | models.Q(per_action_limit__gte=0))
                & (models.Q(daily_limit__isnull=True) | models.Q(daily_limit__gte=0))
                & (models.Q(monthly_limit__isnull=True) | models.Q(monthly_limit__gte=0)),
                name="paymentbudget_limits_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"budget {self.currency}"


class BudgetAlert(OrganizationOwned):
    """A budget window crossed a threshold (80 or 100 percent), raised once per window and level."""

    currency = models.CharField(max_length=3)
    window = models.CharField(max_length=10, choices=[("daily", "Daily"), ("monthly", "Monthly")])
    period_start = models.DateField()
    level = models.PositiveSmallIntegerField()
    spent = models.BigIntegerField()
    limit = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "currency", "window", "period_start", "level"], name="budgetalert_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.window} {self.currency} budget at {self.level}%"


class PaymentTransaction(OrganizationOwned):
    """The transaction log: every payment and refund a tool made."""

    class Kind(models.TextChoices):
        PAYMENT = "payment", "Payment"
        REFUND = "refund", "Refund"

    tool_call = models.ForeignKey("tools.ToolCall", on_delete=models.PROTECT, related_name="transactions")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    purpose = models.CharField(max_length=500)
    vendor = models.CharField(max_length=200)
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approver_label = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=40)
    provider_reference = models.CharField(max_length=200)
    status = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="paymenttransaction_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency} to {self.vendor}"
