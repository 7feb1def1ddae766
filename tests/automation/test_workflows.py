"""Workflows: validation, versions, starting a run (parent task + subtasks), shipped templates, API, analytics."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import Organization
from automation.models import Task, TaskDependency, TaskSource, WorkflowRun, WorkflowTemplate, WorkflowVersion
from automation.services.workflows import workflow_create, workflow_start, workflow_version_create
from automation.workflow_templates import builtin_templates, install_builtin_templates
from tests.automation.scheduling.factories import SIMPLE_DEFINITION, make_workflow

DIAMOND = {
    "steps": [
        {"key": "a", "title": "A"},
        {"key": "b", "title": "B", "depends_on": ["a"]},
        {"key": "c", "title": "C", "depends_on": ["a"]},
        {"key": "d", "title": "D", "depends_on": ["b", "c"]},
    ]
}


def create(tenant, definition, **kwargs):
    return workflow_create(organization=tenant.organization, actor=tenant.manager, name="Flow",
                           definition=definition, **kwargs)


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "field", "words"),
    [
        ({"steps": [{"key": "a", "title": "A", "depends_on": ["b"]}, {"key": "b", "title": "B", "depends_on": ["a"]}]},
         "definition.steps", "a → b → a"),
        ({"steps": [{"key": "a", "title": "A", "executor": "teleport"}]}, "definition.steps[0].executor",
         "unknown executor 'teleport'"),
        ({"steps": [{"key": "a", "title": "A", "depends_on": ["ghost"]}]}, "definition.steps[0].depends_on",
         "ghost"),
        ({"steps": [{"key": "a", "title": "A"}, {"key": "a", "title": "A again"}]}, "definition.steps[1].key",
         "used twice"),
        ({"steps": []}, "definition.steps", "non-empty"),
        ({"steps": [{"key": "a", "title": "Hello {{ nobody }}"}]}, "definition.steps[0]", "nobody"),
        ({"inputs": [{"name": "Bad Name"}], "steps": [{"key": "a", "title": "A"}]}, "definition.inputs[0].name",
         "lowercase"),
        ({"steps": [{"key": "a", "title": "A", "colour": "red"}]}, "definition.steps[0]", "colour"),
        ({"steps": [{"key": "a", "title": "A", "executor": "approval", "parameters": {"cost_estimate": "x",
                                                                                     "currency": "EUR"}}]},
         "definition.steps[0].parameters", "cost_estimate"),
    ],
)
def test_invalid_definitions_are_refused_naming_the_problem(tenant_a, definition, field, words):
    """A cycle (named), an unknown executor or dependency, duplicate keys, undeclared inputs: 400, nothing saved."""
    with pytest.raises(InvalidInput) as caught:
        create(tenant_a, definition)
    assert caught.value.field == field
    assert words in caught.value.message
    assert not WorkflowTemplate.objects.for_org(tenant_a.organization).exists()


def test_versions_are_numbered_and_runs_keep_theirs(tenant_a):
    """A new version gets the next number; a run started before keeps the version it started with."""
    template = create(tenant_a, SIMPLE_DEFINITION)
    run1 = workflow_start(template=template, actor=tenant_a.member, inputs={"who": "Ann"}).run
    version2 = workflow_version_create(template=template, actor=tenant_a.manager, definition=DIAMOND, note="diamond")
    template.refresh_from_db()
    assert version2.number == 2
    assert template.latest_version == 2
    run2 = workflow_start(template=template, actor=tenant_a.member).run
    assert run1.version.number == 1
    assert run2.version.number == 2
    assert Task.objects.for_org(tenant_a.organization).filter(parent=run2.task).count() == 4
    older = workflow_start(template=template, actor=tenant_a.member, version_number=1, inputs={"who": "Bo"}).run
    assert older.version.number == 1


# --- starting ----------------------------------------------------------------------------


def test_start_creates_parent_and_subtasks_with_dependencies(tenant_a, engine):
    """Starting a diamond workflow creates a workflow-sourced parent and four subtasks wired A→B, A→C, B,C→D."""
    template = create(tenant_a, DIAMOND)
    started = workflow_start(template=template, actor=tenant_a.member)
    parent = started.run.task
    assert parent.source == TaskSource.WORKFLOW
    assert parent.assignee_kind == "workflow"
    assert parent.assignee_ref == str(template.pk)
    sub = started.subtasks
    assert set(sub) == {"a", "b", "c", "d"}
    assert all(t.parent_id == parent.pk and t.source == TaskSource.WORKFLOW for t in sub.values())
    edges = set(TaskDependency.objects.for_org(tenant_a.organization).filter(task__parent=parent)
                .values_list("task_id", "depends_on_id"))
    assert edges == {(sub["b"].pk, sub["a"].pk), (sub["c"].pk, sub["a"].pk), (sub["d"].pk, sub["b"].pk),
                     (sub["d"].pk, sub["c"].pk)}
    assert sub["a"].step_key == f"{template.slug}:a"
    engine.drain()
    parent.refresh_from_db()
    assert parent.status == "completed"
    assert set(parent.result["subtasks"]) == {f"{template.slug}:{k}" for k in "abcd"}


def test_inputs_are_rendered_and_required(tenant_a):
    """Inputs fill the steps' text; a missing required input or an unknown one is refused naming it."""
    template = create(tenant_a, SIMPLE_DEFINITION)
    with pytest.raises(InvalidInput) as caught:
        workflow_start(template=template, actor=tenant_a.member)
    assert caught.value.field == "inputs.who"
    with pytest.raises(InvalidInput) as caught:
        workflow_start(template=template, actor=tenant_a.member, inputs={"who": "A", "extra": 1})
    assert "extra" in caught.value.message
    started = workflow_start(template=template, actor=tenant_a.member, inputs={"who": "Maria Lopez"})
    assert started.subtasks["a"].title == "First for Maria Lopez"
    assert WorkflowRun.objects.for_org(tenant_a.organization).count() == 1


def test_failed_step_fails_the_run_and_skips_downstream(tenant_a, engine, executor_registry):
    """When a step fails, the steps after it are skipped and the parent fails naming the step."""
    from automation.executors import BaseExecutor, ExecutionResult

    class Broken(BaseExecutor):
        def execute(self, context):
            return ExecutionResult.failed("printer on fire", retryable=False)

    executor_registry("broken", Broken())
    template = create(tenant_a, {"steps": [{"key": "a", "title": "A", "executor": "broken"},
                                           {"key": "b", "title": "B", "depends_on": ["a"]}]})
    started = workflow_start(template=template, actor=tenant_a.member)
    engine.drain()
    parent = Task.objects.for_org(tenant_a.organization).get(pk=started.run.task_id)
    b = Task.objects.for_org(tenant_a.organization).get(pk=started.subtasks["b"].pk)
    assert parent.status == "failed"
    assert "'A'" in parent.failure_reason
    assert b.status == "skipped"


def test_archived_workflow_cannot_start(tenant_a):
    """An archived workflow is refused at start."""
    from automation.services.workflows import workflow_update

    template = create(tenant_a, DIAMOND)
    workflow_update(template=template, actor=tenant_a.manager, archived=True)
    with pytest.raises(InvalidInput):
        workflow_start(template=template, actor=tenant_a.member)


# --- shipped templates -------------------------------------------------------------------


def test_shipped_templates_validate_and_install_once(tenant_a):
    """The weekly report, meeting follow-up and onboarding templates are valid and install once per org."""
    slugs = {t["slug"] for t in builtin_templates()}
    assert slugs == {"weekly-report", "meeting-follow-up", "employee-onboarding"}
    created = install_builtin_templates(tenant_a.organization)
    assert {t.slug for t in created} == slugs
    assert install_builtin_templates(tenant_a.organization) == []


def test_seed_demo_installs_workflows(db):
    """`manage.py seed_demo` gives the demo organization the shipped workflows (via DEMO_SEED_HOOKS)."""
    call_command("seed_demo", stdout=io.StringIO())
    demo = Organization.objects.get(slug="demo")
    assert set(WorkflowTemplate.objects.for_org(demo).values_list("slug", flat=True)) >= {
        "weekly-report", "meeting-follow-up", "employee-onboarding"
    }


# --- API ---------------------------------------------------------------------------------


def url(tenant, *parts):
    return "/".join([f"/api/v1/orgs/{tenant.slug}/workflows", *map(str, parts)]) + "/"


def test_workflow_api_create_version_start_and_run_status(tenant_a, client_for, engine):
    """A manager creates a workflow and a version; a member starts it; the run shows each step's status."""
    manager = client_for(tenant_a.manager)
    response = manager.post(url(tenant_a), {"name": "Diamond", "definition": DIAMOND}, format="json")
    assert response.status_code == 201, response.content
    workflow_id = response.json()["id"]
    assert response.json()["definition"]["steps"][3]["depends_on"] == ["b", "c"]
    response = manager.post(url(tenant_a, workflow_id, "versions"), {"definition": SIMPLE_DEFINITION,
                                                                     "note": "simpler"}, format="json")
    assert response.status_code == 201
    assert response.json()["number"] == 2
    assert [v["number"] for v in manager.get(url(tenant_a, workflow_id, "versions")).json()["results"]] == [2, 1]
    assert manager.get(url(tenant_a, workflow_id, "versions", 1)).json()["definition"]["steps"][0]["key"] == "a"
    assert manager.get(url(tenant_a, workflow_id, "versions", 9)).status_code == 404
    member = client_for(tenant_a.member)
    response = member.post(url(tenant_a, workflow_id, "start"), {"version": 1}, format="json")
    assert response.status_code == 201, response.content
    run = response.json()
    assert [s["key"] for s in run["steps"]] == ["a", "b", "c", "d"]
    assert run["progress"]["total"] == 4
    engine.drain()
    detail = member.get(f"/api/v1/orgs/{tenant_a.slug}/workflow-runs/{run['id']}/").json()
    assert detail["status"] == "completed"
    assert {s["status"] for s in detail["steps"]} == {"completed"}
    listed = member.get(f"/api/v1/orgs/{tenant_a.slug}/workflow-runs/", {"workflow": workflow_id}).json()
    assert [r["id"] for r in listed["results"]] == [run["id"]]
    assert member.get(url(tenant_a, workflow_id, "runs")).json()["results"][0]["id"] == run["id"]


def test_workflow_delete_only_without_runs(tenant_a, client_for):
    """A workflow never started can be deleted; one with runs answers 409 (archive it instead)."""
    manager = client_for(tenant_a.manager)
    unused = make_workflow(tenant_a, name="Unused")
    used = make_workflow(tenant_a, name="Used")
    workflow_start(template=used, actor=tenant_a.member, inputs={"who": "Ann"})
    assert manager.delete(url(tenant_a, unused.pk)).status_code == 204
    response = manager.delete(url(tenant_a, used.pk))
    assert response.status_code == 409
    assert "archive" in response.json()["detail"]
    assert list(WorkflowTemplate.objects.for_org(tenant_a.organization).values_list("name", flat=True)) == ["Used"]


def test_workflow_api_bad_input_400(tenant_a, client_for):
    """A cyclic definition is a 400 naming the cycle; a start with a missing input names it."""
    manager = client_for(tenant_a.manager)
    cyclic = {"steps": [{"key": "x", "title": "X", "depends_on": ["y"]}, {"key": "y", "title": "Y",
                                                                           "depends_on": ["x"]}]}
    response = manager.post(url(tenant_a), {"name": "Loop", "definition": cyclic}, format="json")
    assert response.status_code == 400
    assert "x → y → x" in response.json()["detail"]
    template = make_workflow(tenant_a)
    response = manager.post(url(tenant_a, template.pk, "start"), {"inputs": {}}, format="json")
    assert response.status_code == 400
    assert "inputs.who" in response.json()


def test_member_cannot_edit_workflows_but_can_start(tenant_a, client_for):
    """A member (no workflows:write) cannot create or change workflows, but may start one."""
    template = make_workflow(tenant_a)
    member = client_for(tenant_a.member)
    assert member.post(url(tenant_a), {"name": "X", "definition": DIAMOND}, format="json").status_code == 403
    assert member.patch(url(tenant_a, template.pk), {"name": "Y"}, format="json").status_code == 403
    assert member.post(url(tenant_a, template.pk, "start"), {"inputs": {"who": "Z"}},
                       format="json").status_code == 201
    assert client_for(tenant_a.viewer).post(url(tenant_a, template.pk, "start"), {"inputs": {"who": "Z"}},
                                            format="json").status_code == 403


def test_other_organization_cannot_reach_workflows_or_runs(tenants, client_for):
    """The other organization gets 404 for the workflow, its versions, start, runs and the run; nothing changes."""
    a, b = tenants
    template = make_workflow(a)
    run = workflow_start(template=template, actor=a.member, inputs={"who": "Ann"}).run
    intruder = client_for(b.owner)
    tasks_before = Task.objects.for_org(a.organization).count()
    for tenant in (a, b):
        assert intruder.get(url(tenant, template.pk)).status_code == 404
        assert intruder.patch(url(tenant, template.pk), {"name": "pwned"}, format="json").status_code == 404
        assert intruder.get(url(tenant, template.pk, "versions")).status_code == 404
        assert intruder.post(url(tenant, template.pk, "versions"), {"definition": DIAMOND},
                             format="json").status_code == 404
        assert intruder.get(url(tenant, template.pk, "versions", 1)).status_code == 404
        assert intruder.post(url(tenant, template.pk, "start"), {"inputs": {"who": "M"}},
                             format="json").status_code == 404
        assert intruder.get(url(tenant, template.pk, "runs")).status_code == 404
        assert intruder.delete(url(tenant, template.pk)).status_code == 404
        assert intruder.get(f"/api/v1/orgs/{tenant.slug}/workflow-runs/{run.pk}/").status_code == 404
    assert intruder.get(url(a)).status_code == 404
    assert Task.objects.for_org(a.organization).count() == tasks_before
    template.refresh_from_db()
    assert template.name == "Simple flow"
    assert WorkflowVersion.objects.for_org(a.organization).filter(template=template).count() == 1


# --- analytics ---------------------------------------------------------------------------


def test_analytics_success_rate_durations_and_failures(tenant_a, client_for, engine, executor_registry):
    """Analytics count completed and failed tasks of the period, their mean/p95 duration and failures by executor."""
    from automation.executors import BaseExecutor, ExecutionResult

    class Broken(BaseExecutor):
        def execute(self, context):
            return ExecutionResult.failed("nope", retryable=False)

    executor_registry("broken", Broken())
    from automation.services.tasks import task_create

    for i in range(3):
        task_create(organization=tenant_a.organization, actor=None, title=f"ok {i}", source="api")
    task_create(organization=tenant_a.organization, actor=None, title="bad", source="api", executor="broken")
    engine.drain()
    response = client_for(tenant_a.viewer).get(f"/api/v1/orgs/{tenant_a.slug}/analytics/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["completed"] == 3
    assert body["failed"] == 1
    assert body["success_rate"] == 0.75
    assert body["mean_duration_seconds"] is not None
    assert body["p95_duration_seconds"] >= body["p50_duration_seconds"]
    assert body["failures_by_executor"] == [{"executor": "broken", "failed": 1}]
    assert body["failed_attempts_by_executor"] == [{"executor": "broken", "failed": 1}]
    assert sum(d["completed"] for d in body["daily"]) == 3
    later = (timezone.now() + timedelta(days=1)).isoformat()
    body = client_for(tenant_a.viewer).get(f"/api/v1/orgs/{tenant_a.slug}/analytics/", {"since": later}).json()
    assert "until" in body  # since after now: refused naming until
    assert client_for(tenant_a.viewer).get(f"/api/v1/orgs/{tenant_a.slug}/analytics/",
                                           {"executor": "noop"}).json()["failed"] == 0


def test_analytics_other_organization_404(tenants, client_for):
    """Another organization's analytics are 404."""
    a, b = tenants
    assert client_for(b.owner).get(f"/api/v1/orgs/{a.slug}/analytics/").status_code == 404
