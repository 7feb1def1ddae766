"""Schedules, triggers, reminders, workflows and approvals made through their services."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.services.approvals import approval_request_create
from automation.services.schedules import schedule_create
from automation.services.schedules_reminders import reminder_create
from automation.services.triggers import trigger_create
from automation.services.workflows import workflow_create, workflow_start

SIMPLE_DEFINITION = {
    "inputs": [{"name": "who", "required": True}],
    "steps": [
        {"key": "a", "title": "First for {{ who }}", "executor": "noop"},
        {"key": "b", "title": "Second", "executor": "noop", "depends_on": ["a"]},
    ],
}


def make_schedule(tenant, **kwargs):
    defaults = {"name": "Hourly", "kind": "interval", "interval_seconds": 3600, "task_title": "Scheduled"}
    defaults.update(kwargs)
    return schedule_create(organization=tenant.organization, actor=tenant.member, **defaults)


def make_trigger(tenant, **kwargs):
    defaults = {"name": "Hook", "kind": "webhook", "task_title": "From webhook"}
    defaults.update(kwargs)
    return trigger_create(organization=tenant.organization, actor=tenant.member, **defaults)


def make_reminder(tenant, user=None, **kwargs):
    defaults = {"title": "Call the bank", "kind": "one_off", "run_at": timezone.now() + timedelta(hours=1)}
    defaults.update(kwargs)
    user = user or tenant.member
    return reminder_create(organization=tenant.organization, actor=user, user=user, **defaults)


def make_workflow(tenant, definition=None, **kwargs):
    defaults = {"name": "Simple flow"}
    defaults.update(kwargs)
    return workflow_create(organization=tenant.organization, actor=tenant.manager,
                           definition=definition or SIMPLE_DEFINITION, **defaults)


def make_workflow_run(tenant, template=None, inputs=None):
    template = template or make_workflow(tenant, name="Run me")
    return workflow_start(template=template, actor=tenant.member, inputs=inputs or {"who": "Ann"}).run


def make_approval(tenant, **kwargs):
    defaults = {"kind": "task", "title": "Approve it", "requested_by": tenant.member, "arguments": {"x": 1}}
    defaults.update(kwargs)
    return approval_request_create(organization=tenant.organization, **defaults)
