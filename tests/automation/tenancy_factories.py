"""Rows of the other organization for the cross-organization route walker."""

from automation.models import Task, TaskRun
from tests.automation.factories import make_manual_task, make_run
from tests.tenancy.registry import register, register_payload, register_url_kwarg


@register(Task)
def _task(tenant):
    return make_manual_task(tenant.organization, title="Other organization's task")


@register(TaskRun)
def _run(tenant):
    return make_run(make_manual_task(tenant.organization, title="Task with a run"))


register_url_kwarg("depends_on", Task)
register_url_kwarg("attempt", TaskRun)
register_payload(Task, "create", lambda tenant: {"title": "Injected", "executor": "noop"})
register_payload(Task, "partial_update", lambda tenant: {"title": "Renamed", "priority": 90})
register_payload(Task, "cancel", lambda tenant: {"reason": "cross-organization"})
register_payload(Task, "fail", lambda tenant: {"reason": "cross-organization"})
register_payload(Task, "complete", lambda tenant: {"result": {"x": 1}})
register_payload(Task, "dependencies", lambda tenant: {"depends_on": make_manual_task(tenant.organization).pk})
