"""Rows of the other organization for the cross-organization walker: approvals, schedules, triggers,
reminders, notifications and workflows (see tests/tenancy/registry.py)."""

from __future__ import annotations

from accounts.models import ApprovalRequest
from automation.models import (
    Notification,
    Reminder,
    Schedule,
    Trigger,
    WorkflowRun,
    WorkflowTemplate,
    WorkflowVersion,
)
from tests.automation.scheduling.factories import (
    SIMPLE_DEFINITION,
    make_approval,
    make_reminder,
    make_schedule,
    make_trigger,
    make_workflow,
    make_workflow_run,
)
from tests.tenancy.registry import register, register_payload, register_url_kwarg


@register(ApprovalRequest)
def _approval(tenant):
    return make_approval(tenant)


@register(Schedule)
def _schedule(tenant):
    return make_schedule(tenant)


@register(Trigger)
def _trigger(tenant):
    return make_trigger(tenant).trigger


@register(Reminder)
def _reminder(tenant):
    # The walker acts as organization A's owner: give B's owner the reminder, the closest to a target.
    return make_reminder(tenant, user=tenant.owner)


@register(Notification)
def _notification(tenant):
    return Notification.objects.for_org(tenant.organization).create(
        organization=tenant.organization, user=tenant.owner, title="Other organization's notification"
    )


@register(WorkflowTemplate)
def _workflow(tenant):
    return make_workflow(tenant, name="Other organization's workflow")


@register(WorkflowVersion)
def _workflow_version(tenant):
    template = make_workflow(tenant, name="Versioned elsewhere")
    return WorkflowVersion.objects.for_org(tenant.organization).get(template=template, number=1)


@register(WorkflowRun)
def _workflow_run(tenant):
    return make_workflow_run(tenant)


register_url_kwarg("number", WorkflowVersion)
register_payload(ApprovalRequest, "approve", lambda tenant: {"reason": "cross-organization"})
register_payload(ApprovalRequest, "reject", lambda tenant: {"reason": "cross-organization"})
register_payload(Schedule, "create", lambda tenant: {"name": "Injected", "kind": "interval", "interval_seconds": 60,
                                                      "task_title": "Injected"})
register_payload(Schedule, "partial_update", lambda tenant: {"name": "Renamed", "enabled": False})
register_payload(Trigger, "create", lambda tenant: {"name": "Injected", "kind": "webhook", "task_title": "Injected"})
register_payload(Trigger, "partial_update", lambda tenant: {"name": "Renamed", "enabled": False})
register_payload(Reminder, "create", lambda tenant: {"title": "Injected", "kind": "interval", "interval_seconds": 60})
register_payload(Reminder, "partial_update", lambda tenant: {"title": "Renamed"})
register_payload(WorkflowTemplate, "create", lambda tenant: {"name": "Injected", "definition": SIMPLE_DEFINITION})
register_payload(WorkflowTemplate, "partial_update", lambda tenant: {"name": "Renamed", "archived": True})
register_payload(WorkflowTemplate, "versions", lambda tenant: {"definition": SIMPLE_DEFINITION})
register_payload(WorkflowTemplate, "start", lambda tenant: {"inputs": {"who": "Mallory"}})
