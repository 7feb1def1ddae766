"""The tasks API under /api/v1/orgs/{slug}/tasks/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from automation.executors import BaseExecutor, ExecutionResult
from automation.models import Task, TaskDependency, TaskEvent, TaskStatus
from automation.services import tasks as services
from tests.automation.factories import make_manual_task, make_task

S = TaskStatus


def url(slug: str, *parts: object) -> str:
    tail = "".join(f"{p}/" for p in parts)
    return f"/api/v1/orgs/{slug}/tasks/{tail}"


def _counts(org):
    return (Task.objects.for_org(org).count(), TaskEvent.objects.for_org(org).count(),
            TaskDependency.objects.for_org(org).count())


def test_create_queues_an_automated_task_and_logs_it(tenant_a, client_for, engine):
    """A member creates a task: 201, queued (its message published), a 'created' event and an audit row."""
    client = client_for(tenant_a.member)
    due = (timezone.now() + timedelta(days=2)).isoformat()
    response = client.post(url(tenant_a.slug), {
        "title": "Send the March invoices", "description": "to every client", "priority": 75, "due_at": due,
        "assignee_user": tenant_a.manager.pk, "parameters": {"output": "sent"}, "max_retries": 2,
    })
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert body["assignee"] == {"kind": "user", "user": tenant_a.manager.pk, "user_email": tenant_a.manager.email,
                                "ref": ""}
    assert body["created_by"] == tenant_a.member.email
    assert body["last_event_sequence"] == 2
    assert list(engine.messages) == [(tenant_a.organization.pk, body["id"])]
    assert AuditEvent.objects.for_org(tenant_a.organization).filter(action="task.created",
                                                                    target_id=str(body["id"])).exists()


@pytest.mark.parametrize(("payload", "field", "words"), [
    ({"title": "X", "executor": "teleport"}, "executor", "unknown executor 'teleport'"),
    ({"title": "X", "executor": "wait", "parameters": {"seconds": "soon"}}, "parameters.seconds", "seconds must"),
    ({"title": ""}, "title", ""),
    ({"title": "X", "priority": 500}, "priority", ""),
    ({"title": "X", "source": "fax"}, "source", ""),
    ({"title": "X", "depends_on": [999999]}, "depends_on", "no task #999999"),
    ({"title": "X", "assignee_user": 999999}, "assignee_user", "not a member"),
    ({"title": "X", "assignee_user": 1, "assignee_agent": "7"}, "assignee_agent", "one assignee"),
    ({"title": "X", "execution_type": "magic"}, "execution_type", ""),
])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_saved(tenant_a, client_for, payload, field, words):
    """Bad create input answers 400 naming the field; no task, event or dependency is written."""
    before = _counts(tenant_a.organization)
    response = client_for(tenant_a.member).post(url(tenant_a.slug), payload)
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert words in str(response.json())
    assert _counts(tenant_a.organization) == before


def test_viewers_read_but_cannot_create_or_execute(tenant_a, client_for):
    """tasks:read lets a viewer list; creating and executing need tasks:write / tasks:execute."""
    task = make_task(tenant_a.organization, title="Semi", execution_type="semi_automated")
    viewer = client_for(tenant_a.viewer)
    assert viewer.get(url(tenant_a.slug)).status_code == 200
    assert viewer.post(url(tenant_a.slug), {"title": "Nope"}).status_code == 403
    assert viewer.post(url(tenant_a.slug, task.pk, "execute")).status_code == 403
    assert _fresh_status(task) == S.PENDING


def _fresh_status(task):
    task.refresh_from_db()
    return task.status


def test_list_filters_and_full_text_search(tenant_a, client_for, engine, django_assert_max_num_queries):
    """Filters on status, priority, assignee, due date and source, and search in titles and descriptions."""
    org = tenant_a.organization
    soon = timezone.now() + timedelta(hours=3)
    invoice = make_task(org, title="Send invoices to clients", priority=90, due_at=soon,
                        assignee=tenant_a.member, execution_type="manual")
    make_task(org, title="Water the plants", description="the big ficus", priority=10, source="email",
              execution_type="manual")
    make_task(org, title="Quarterly invoice audit", priority=50, source="schedule")
    client = client_for(tenant_a.member)

    def titles(**params):
        response = client.get(url(tenant_a.slug), params)
        assert response.status_code == 200, response.content
        return sorted(t["title"] for t in response.json()["results"])

    assert titles(q="invoices") == ["Quarterly invoice audit", "Send invoices to clients"]
    assert titles(q="ficus") == ["Water the plants"]
    assert titles(status="queued") == ["Quarterly invoice audit"]
    assert titles(status="pending,queued", priority_min=50) == ["Quarterly invoice audit",
                                                                "Send invoices to clients"]
    assert titles(priority=10) == ["Water the plants"]
    assert titles(assignee="me") == ["Send invoices to clients"]
    assert titles(assignee=str(tenant_a.member.pk)) == ["Send invoices to clients"]
    assert titles(due_before=(soon + timedelta(hours=1)).isoformat()) == ["Send invoices to clients"]
    assert titles(source="email") == ["Water the plants"]
    assert client.get(url(tenant_a.slug), {"status": "sleeping"}).status_code == 400
    assert client.get(url(tenant_a.slug), {"assignee": "robot"}).status_code == 400
    for i in range(10):
        make_task(org, title=f"Extra {i}", depends_on=[invoice], execution_type="manual")
    with django_assert_max_num_queries(12):
        assert len(client.get(url(tenant_a.slug)).json()["results"]) == 13


def test_update_changes_fields_not_status(tenant_a, client_for):
    """PATCH changes descriptive fields (logged as an event); a status in the body is refused."""
    task = make_manual_task(tenant_a.organization, title="Call Bob")
    client = client_for(tenant_a.member)
    response = client.patch(url(tenant_a.slug, task.pk), {"title": "Call Bob back", "priority": 80,
                                                           "assignee_agent": "12"})
    assert response.status_code == 200, response.content
    assert response.json()["title"] == "Call Bob back"
    assert response.json()["assignee"]["kind"] == "agent"
    event = TaskEvent.objects.for_org(tenant_a.organization).filter(task=task, type="updated").get()
    assert event.payload["fields"] == ["assignee_kind", "assignee_ref", "assignee_user", "priority", "title"]
    refused = client.patch(url(tenant_a.slug, task.pk), {"status": "completed"})
    assert refused.status_code == 400
    assert "status" in refused.json()
    assert _fresh_status(task) == S.PENDING


def test_actions_out_of_a_final_state_are_refused_naming_the_states(tenant_a, client_for):
    """Cancelling a cancelled task (or retrying it, or changing it) answers 400 naming from/to; nothing changes."""
    task = make_manual_task(tenant_a.organization, title="Order chairs")
    client = client_for(tenant_a.member)
    assert client.post(url(tenant_a.slug, task.pk, "cancel"), {"reason": "bought elsewhere"}).json()["status"] == \
        "cancelled"
    before = _counts(tenant_a.organization)
    again = client.post(url(tenant_a.slug, task.pk, "cancel"), {})
    assert again.status_code == 400
    assert "cannot go from cancelled to cancelled" in again.json()["detail"]
    assert "final state" in again.json()["detail"]
    retry = client.post(url(tenant_a.slug, task.pk, "retry"))
    assert retry.status_code == 400
    assert "only a failed task can be retried" in retry.json()["detail"]
    edit = client.patch(url(tenant_a.slug, task.pk), {"title": "Order desks"})
    assert edit.status_code == 400
    assert "cancelled" in edit.json()["detail"]
    assert _counts(tenant_a.organization) == before


def test_execute_retry_and_manual_actions(tenant_a, client_for, engine, executor_registry):
    """execute runs a semi-automated task; retry re-runs a failed one; start/complete finish a manual one."""

    class Once(BaseExecutor):
        failed = False

        def execute(self, context):
            if not self.failed:
                self.failed = True
                return ExecutionResult.failed("provider down", retryable=False)
            return ExecutionResult.completed("ok")

    executor_registry("once", Once())
    org = tenant_a.organization
    client = client_for(tenant_a.member)
    semi = make_task(org, title="Publish post", execution_type="semi_automated", executor="once")
    assert client.post(url(tenant_a.slug, semi.pk, "execute")).json()["status"] == "queued"
    engine.drain()
    assert _fresh_status(semi) == S.FAILED
    assert client.post(url(tenant_a.slug, semi.pk, "retry")).json()["status"] == "queued"
    engine.drain()
    assert _fresh_status(semi) == S.COMPLETED

    manual = make_manual_task(org, title="Sign the lease")
    assert client.post(url(tenant_a.slug, manual.pk, "start")).json()["status"] == "in_progress"
    done = client.post(url(tenant_a.slug, manual.pk, "complete"), {"result": {"signed": True}}, format="json")
    assert done.json()["status"] == "completed"
    assert done.json()["result"] == {"signed": True}


def test_events_replay_after_a_sequence(tenant_a, client_for):
    """?after=N returns only later events in order, with where to continue; limit pages through them."""
    task = make_manual_task(tenant_a.organization, title="Renew domain")
    services.task_start(task=task, actor=tenant_a.member)
    services.task_complete(task=task, actor=tenant_a.member)
    client = client_for(tenant_a.viewer)
    everything = client.get(url(tenant_a.slug, task.pk, "events")).json()
    assert [e["sequence"] for e in everything["results"]] == [1, 2, 3]
    later = client.get(url(tenant_a.slug, task.pk, "events"), {"after": 1, "limit": 1}).json()
    assert [e["sequence"] for e in later["results"]] == [2]
    assert later["has_more"] is True
    assert later["next_after"] == 2
    rest = client.get(url(tenant_a.slug, task.pk, "events"), {"after": later["next_after"]}).json()
    assert [(e["sequence"], e["payload"]["to"]) for e in rest["results"]] == [(3, "completed")]
    assert rest["has_more"] is False
    assert client.get(url(tenant_a.slug, task.pk, "events"), {"after": -1}).status_code == 400


def test_runs_are_listed_with_their_logs(tenant_a, client_for, engine):
    """Each attempt is listed; one attempt's detail carries its full log and output."""
    task = make_task(tenant_a.organization, title="Nap", executor="wait", parameters={"seconds": 0,
                                                                                       "output": {"z": 1}})
    engine.drain()
    client = client_for(tenant_a.viewer)
    runs = client.get(url(tenant_a.slug, task.pk, "runs")).json()
    assert [(r["attempt"], r["status"], r["executor"]) for r in runs] == [(1, "completed", "wait")]
    detail = client.get(url(tenant_a.slug, task.pk, "runs", 1)).json()
    assert "waiting 0 s" in detail["log"]
    assert detail["output"] == {"z": 1}
    assert client.get(url(tenant_a.slug, task.pk, "runs", 2)).status_code == 404


def test_dependencies_are_added_listed_and_removed_and_cycles_refused(tenant_a, client_for):
    """POST adds a dependency; a cycle answers 400 naming it and changes nothing; DELETE removes it."""
    org = tenant_a.organization
    first = make_manual_task(org, title="Book venue")
    second = make_manual_task(org, title="Send invitations")
    client = client_for(tenant_a.member)
    added = client.post(url(tenant_a.slug, second.pk, "dependencies"), {"depends_on": first.pk})
    assert added.status_code == 201
    assert added.json() == [{"id": first.pk, "title": "Book venue", "status": "pending"}]
    before = _counts(org)
    cycle = client.post(url(tenant_a.slug, first.pk, "dependencies"), {"depends_on": second.pk})
    assert cycle.status_code == 400
    assert cycle.json()["code"] == "cycle"
    assert f"'Book venue' (#{first.pk}) → 'Send invitations' (#{second.pk}) → 'Book venue'" in \
        cycle.json()["detail"]
    assert _counts(org) == before
    assert client.get(url(tenant_a.slug, second.pk, "dependencies")).json()[0]["id"] == first.pk
    assert client.delete(url(tenant_a.slug, second.pk, "dependencies", first.pk)).status_code == 204
    assert client.get(url(tenant_a.slug, second.pk, "dependencies")).json() == []
    assert client.delete(url(tenant_a.slug, second.pk, "dependencies", first.pk)).status_code == 400


def test_the_other_organization_gets_404_on_every_task_endpoint_and_changes_nothing(tenants, client_for, engine):
    """A member of A, asking about B's task by id (under A's slug or B's), gets 404 and no write happens."""
    a, b = tenants
    theirs = make_manual_task(b.organization, title="B's secret plan")
    mine = make_manual_task(a.organization, title="Mine")
    client = client_for(a.owner)
    calls = [
        ("get", url(a.slug, theirs.pk), None),
        ("patch", url(a.slug, theirs.pk), {"title": "pwned"}),
        ("post", url(a.slug, theirs.pk, "execute"), None),
        ("post", url(a.slug, theirs.pk, "cancel"), {}),
        ("post", url(a.slug, theirs.pk, "retry"), None),
        ("post", url(a.slug, theirs.pk, "pause"), None),
        ("post", url(a.slug, theirs.pk, "resume"), {}),
        ("post", url(a.slug, theirs.pk, "start"), None),
        ("post", url(a.slug, theirs.pk, "complete"), {}),
        ("post", url(a.slug, theirs.pk, "fail"), {"reason": "x"}),
        ("get", url(a.slug, theirs.pk, "events"), None),
        ("get", url(a.slug, theirs.pk, "runs"), None),
        ("get", url(a.slug, theirs.pk, "runs", 1), None),
        ("get", url(a.slug, theirs.pk, "dependencies"), None),
        ("post", url(a.slug, theirs.pk, "dependencies"), {"depends_on": mine.pk}),
        ("delete", url(a.slug, mine.pk, "dependencies", theirs.pk), None),
        ("get", url(b.slug), None),
        ("post", url(b.slug), {"title": "injected"}),
        ("get", url(b.slug, theirs.pk), None),
    ]
    before = (_counts(a.organization), _counts(b.organization))
    for method, path, body in calls:
        response = getattr(client, method)(path, body, format="json") if body is not None else \
            getattr(client, method)(path)
        assert response.status_code == 404, (method, path, response.status_code, response.content)
        assert "secret plan" not in response.content.decode()
    assert (_counts(a.organization), _counts(b.organization)) == before
    # Depending on another organization's task is refused too (a 400 that says it is not found here).
    refused = client.post(url(a.slug, mine.pk, "dependencies"), {"depends_on": theirs.pk})
    assert refused.status_code == 400
    assert f"no task #{theirs.pk} in this organization" in refused.json()["detail"]
