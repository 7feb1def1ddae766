"""Celery tasks of the memory app."""

from __future__ import annotations

from celery import shared_task

from accounts.models import Organization
from accounts.tenancy import with_org_scope
from memory.models import Fact
from memory.services.expiry import expiry_sweep

# Declared for the system's periodic jobs (the automation app's system_jobs lists it).
EXPIRY_SWEEP_EVERY_SECONDS = 6 * 3600


@shared_task(name="memory.expiry_sweep")
def expiry_sweep_all() -> int:
    """Run the expiry sweep of every organization that has facts; returns how many reviews are pending."""
    organization_ids = (
        Fact.objects.dangerously_unscoped().values_list("organization_id", flat=True).distinct().order_by()
    )
    pending = 0
    for organization_id in organization_ids:
        if expiry_sweep_org(organization_id=organization_id) is not None:
            pending += 1
    return pending


@with_org_scope
def expiry_sweep_org(*, organization_id: int) -> int | None:
    review = expiry_sweep(organization=Organization.objects.get(pk=organization_id))
    return review.pk if review is not None else None
