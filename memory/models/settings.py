"""Per-organization memory settings and the reviews the expiry job asks for."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from accounts.tenancy import OrganizationOwned
from memory import conf
from memory.models.facts import Category


def all_categories() -> list[str]:
    return [c.value for c in Category]


class MemorySettings(OrganizationOwned):
    """Whether the organization's assistant remembers, what, and for how long unused facts stay."""

    enabled = models.BooleanField(default=True)
    allowed_categories = ArrayField(
        models.CharField(max_length=12, choices=Category.choices), default=all_categories, blank=True
    )
    auto_expiry_days = models.PositiveIntegerField(
        default=conf.default_expiry_days, help_text="Unused facts older than this are proposed for deletion; 0: never."
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "memory settings"
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="memory_settings_one_per_org"),
            models.CheckConstraint(
                condition=models.Q(auto_expiry_days__lte=3650), name="memory_settings_expiry_range"
            ),
        ]

    def __str__(self) -> str:
        return f"Memory settings of organization {self.organization_id}"


class ExpiryReviewStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved: the facts were deleted"
    DISMISSED = "dismissed", "Dismissed: the facts are kept"


class ExpiryReview(OrganizationOwned):
    """Facts unused for longer than the organization's expiry period, waiting for a person's go-ahead."""

    status = models.CharField(max_length=10, choices=ExpiryReviewStatus.choices, default=ExpiryReviewStatus.PENDING)
    cutoff = models.DateTimeField(help_text="Facts not used since this time were proposed.")
    fact_count = models.PositiveIntegerField(default=0)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"], condition=models.Q(status="pending"), name="memory_expiry_one_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"Expiry review #{self.pk}"
