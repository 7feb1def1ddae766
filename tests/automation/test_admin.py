"""The automation admin: read-only lists across organizations, actions only for members with the scope."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from automation.models import Schedule, Task, TaskStatus, Trigger
from automation.services import tasks as services
from tests.automation.factories import make_task
from tests.automation.scheduling.factories import make_schedule, make_trigger

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(tenant_a, client):
    """Acme's owner is also staff: a member of A, not of B."""
    owner = tenant_a.owner
    owner.is_staff = owner.is_superuser = True
    owner.save()
    client.force_login(owner)
    return client


def _failed(tenant) -> Task:
    task = make_task(tenant.organization, title=f"Send {tenant.slug} invoices", execution_type="manual")
    services.task_start(task=task, actor=tenant.manager)
    services.task_fail(task=task, actor=tenant.manager, reason="the mail server refused")
    task.refresh_from_db()
    return task


def _action(client, model: str, action: str, rows) -> str:
    response = client.post(f"/admin/automation/{model}/", {"action": action, "_selected_action": [r.pk for r in rows]},
                           follow=True)
    assert response.status_code == 200
    return response.content.decode()


def test_lists_render_read_only_and_a_trigger_shows_no_secret(staff, tenant_a, tenant_b):
    make_schedule(tenant_b, name="B's nightly")
    trigger = make_trigger(tenant_a, name="Stripe hook").trigger
    make_task(tenant_b.organization, title="B's work")
    for model in ("task", "taskrun", "workflowrun", "schedule", "trigger", "triggerdelivery", "circuitbreaker"):
        assert staff.get(f"/admin/automation/{model}/").status_code == 200, model
    assert "B&#x27;s nightly" in staff.get("/admin/automation/schedule/").content.decode()
    page = staff.get(f"/admin/automation/trigger/{trigger.pk}/change/").content.decode()
    assert "Stripe hook" in page
    assert "secret_ciphertext" not in page
    assert "secret_nonce" not in page
    assert staff.get("/admin/automation/task/add/").status_code == 403


def test_retry_works_in_the_staff_members_organization_and_is_refused_in_another(staff, tenant_a, tenant_b, engine):
    """The retried manual task goes back to pending for a person (the engine does not run it)."""
    ours, theirs = _failed(tenant_a), _failed(tenant_b)
    page = _action(staff, "task", "retry_selected", [ours, theirs])
    assert "1 task(s) retried." in page
    assert f"only a member of {tenant_b.organization} with the tasks:write scope" in page
    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert ours.status == TaskStatus.PENDING
    engine.drain()
    ours.refresh_from_db()
    assert ours.status == TaskStatus.PENDING
    assert theirs.status == TaskStatus.FAILED
    assert AuditEvent.objects.for_org(tenant_a.organization).filter(action="task.retried",
                                                                    actor=tenant_a.owner).count() == 1
    page = _action(staff, "task", "retry_selected", [ours])
    assert "only a failed task can be retried" in page


def test_pause_and_resume_schedules_and_triggers_through_their_services(staff, tenant_a, tenant_b):
    schedule, foreign = make_schedule(tenant_a), make_schedule(tenant_b)
    trigger = make_trigger(tenant_a).trigger
    assert "1 schedule(s) paused." in _action(staff, "schedule", "pause_selected", [schedule, foreign])
    assert Schedule.objects.for_org(tenant_a.organization).get(pk=schedule.pk).enabled is False
    assert Schedule.objects.for_org(tenant_b.organization).get(pk=foreign.pk).enabled is True
    assert "1 schedule(s) resumed." in _action(staff, "schedule", "resume_selected", [schedule])
    resumed = Schedule.objects.for_org(tenant_a.organization).get(pk=schedule.pk)
    assert resumed.enabled is True
    assert resumed.next_run_at is not None
    assert "1 trigger(s) paused." in _action(staff, "trigger", "pause_selected", [trigger])
    assert Trigger.objects.for_org(tenant_a.organization).get(pk=trigger.pk).enabled is False
    actions = set(AuditEvent.objects.for_org(tenant_a.organization).filter(actor=tenant_a.owner)
                  .values_list("action", flat=True))
    assert {"schedule.updated", "trigger.updated"} <= actions, actions
