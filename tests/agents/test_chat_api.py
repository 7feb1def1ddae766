"""Chat API: threads and messages of the caller only, ?after= paging, bad input, scopes, other organizations;
plans (list, edit) and the task "execute" action's strategy for AI tasks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agents.llm.types import LLMResult, Usage
from agents.loop import runtime
from agents.models import Message, Plan, PlanStatus, Thread
from agents.services import conversations
from automation.models import Task, TaskStatus
from automation.services.tasks import task_create
from tests.agents.loop_support import inline_engine  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def threads_url(tenant) -> str:
    return f"/api/v1/orgs/{tenant.slug}/threads/"


@pytest.fixture
def queued(monkeypatch):
    """What posting a message queues (handling and learning), instead of Celery."""
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(conversations, "_enqueue_handling",
                        lambda org_id, message_id: sent.append((org_id, message_id)))
    return sent


def make_thread(client, tenant) -> dict:
    response = client.post(threads_url(tenant), {"title": "Onboarding"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_member_starts_a_thread_posts_and_reads_with_after(tenant_a, client_for, queued,
                                                             django_capture_on_commit_callbacks):
    """Posting stores the user's message (201) and queues its handling once committed; ?after= returns only newer
    messages, oldest first, with the cursor to continue from."""
    client = client_for(tenant_a.member)
    thread = make_thread(client, tenant_a)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(f"{threads_url(tenant_a)}{thread['id']}/messages/", {"content": "  Hello there  "},
                            format="json")
    assert first.status_code == 201
    body = first.json()
    assert (body["role"], body["content"], body["thread"]) == ("user", "Hello there", thread["id"])
    assert queued == [(tenant_a.organization.pk, body["id"])]
    second = client.post(f"{threads_url(tenant_a)}{thread['id']}/messages/", {"content": "Second"}, format="json")
    listing = client.get(f"{threads_url(tenant_a)}{thread['id']}/messages/", {"after": body["id"]}).json()
    assert [m["id"] for m in listing["results"]] == [second.json()["id"]]
    assert listing["next_after"] == second.json()["id"]
    everything = client.get(f"{threads_url(tenant_a)}{thread['id']}/messages/").json()["results"]
    assert [m["content"] for m in everything] == ["Hello there", "Second"]
    assert client.get(threads_url(tenant_a)).json()["results"][0]["title"] == "Onboarding"


@pytest.mark.parametrize(("payload", "query"), [
    ({}, None), ({"content": ""}, None), ({"content": "   "}, None), ({"content": "x" * 8001}, None),
    (None, {"after": "-1"}), (None, {"after": "soon"}), (None, {"limit": "0"}),
])
def test_bad_input_is_a_400_naming_the_field(tenant_a, client_for, queued, payload, query):
    """An empty or too long message, or a bad cursor, is refused with a field-level message; nothing is stored."""
    client = client_for(tenant_a.member)
    thread = make_thread(client, tenant_a)
    url = f"{threads_url(tenant_a)}{thread['id']}/messages/"
    response = client.post(url, payload, format="json") if payload is not None else client.get(url, query)
    assert response.status_code == 400
    field = "content" if payload is not None else next(iter(query))
    assert field in response.json()
    assert not Message.objects.for_org(tenant_a.organization).exists()
    assert queued == []


def test_another_members_thread_is_not_found_and_not_listed(tenant_a, client_for, queued):
    """A thread belongs to its member: another member of the same organization gets 404 and cannot post to it."""
    mine = make_thread(client_for(tenant_a.member), tenant_a)
    other = client_for(tenant_a.manager)
    assert other.get(threads_url(tenant_a)).json()["results"] == []
    assert other.get(f"{threads_url(tenant_a)}{mine['id']}/").status_code == 404
    response = other.post(f"{threads_url(tenant_a)}{mine['id']}/messages/", {"content": "hi"}, format="json")
    assert response.status_code == 404
    assert not Message.objects.for_org(tenant_a.organization).exists()


def test_a_viewer_may_not_use_the_assistant(tenant_a, client_for, queued):
    """agents:use is needed to read or write threads (viewers lack it)."""
    viewer = client_for(tenant_a.viewer)
    assert viewer.get(threads_url(tenant_a)).status_code == 403
    assert viewer.post(threads_url(tenant_a), {}, format="json").status_code == 403
    assert not Thread.objects.for_org(tenant_a.organization).exists()


def test_other_organizations_threads_are_not_found_and_unchanged(tenants, client_for, queued):
    """Organization B's thread, reached with B's slug or A's slug, is a 404 for A's member; nothing is posted."""
    a, b = tenants
    theirs = make_thread(client_for(b.member), b)
    client = client_for(a.member)
    for url in (f"{threads_url(b)}{theirs['id']}/messages/", f"{threads_url(a)}{theirs['id']}/messages/"):
        assert client.get(url).status_code == 404
        assert client.post(url, {"content": "hi"}, format="json").status_code == 404
    assert client.post(threads_url(b), {}, format="json").status_code == 404
    assert not Message.objects.for_org(b.organization).exists()
    assert Thread.objects.for_org(b.organization).count() == 1
    assert queued == []


# --- plans and the execute strategy ------------------------------------------------------------------------


def ai_task(tenant, request: str, *, approve_plan: bool = False) -> Task:
    return task_create(organization=tenant.organization, actor=tenant.member, title=request[:100], source="api",
                       execution_type="semi_automated", executor="ai",
                       parameters={"request": request, "approve_plan": approve_plan})


def execute(client, tenant, task: Task) -> dict:
    response = client.post(f"/api/v1/orgs/{tenant.slug}/tasks/{task.pk}/execute/")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def engine(inline_engine, settings, tmp_path):  # noqa: F811
    settings.MEDIA_ROOT = tmp_path
    settings.LLM_DEPLOYMENTS = {}
    settings.LLM_TIERS = {}


def test_execute_a_one_step_ai_task_is_immediate_and_answers_with_the_result(tenant_a, client_for, engine):
    """A request the Manager plans as one step is done during the call: strategy immediate, the task completed,
    the result in the answer."""
    task = ai_task(tenant_a, "Say hello to the new colleagues")
    body = execute(client_for(tenant_a.member), tenant_a, task)
    assert body["execution"]["strategy"] == "immediate"
    assert body["execution"]["status"] == "completed"
    assert body["status"] == TaskStatus.COMPLETED
    assert body["execution"]["result"]["summary"]
    assert body["result"] == body["execution"]["result"]


def test_execute_a_multi_step_ai_task_decomposes_into_subtasks(tenant_a, client_for, engine):
    """A request planned in several steps answers decompose with the subtasks, each with its execution type and
    dependencies; the engine runs them (the parent is queued)."""
    task = ai_task(tenant_a, "Prepare the weekly report and send it to the team")
    body = execute(client_for(tenant_a.member), tenant_a, task)
    execution = body["execution"]
    assert execution["strategy"] == "decompose"
    assert [(s["step"], s["execution_type"], s["depends_on"]) for s in execution["subtasks"]] == [
        ("write_weekly_report", "fully_automated", []),
        ("email_weekly_report", "fully_automated", ["write_weekly_report"])]
    children = Task.objects.for_org(tenant_a.organization).filter(parent=task)
    assert sorted(children.values_list("pk", flat=True)) == sorted(s["id"] for s in execution["subtasks"])
    assert body["status"] == TaskStatus.QUEUED


def test_execute_answers_blocked_with_what_the_task_needs(tenant_a, client_for, engine, monkeypatch):
    """A plan needing a tool the requester may not use: strategy blocked, the need named, the task blocked."""
    plan = {"summary": "pay", "strategy": "immediate", "steps": [
        {"id": "pay", "title": "Pay", "depends_on": [], "role": "employee", "tools": ["payments_create"],
         "success_criteria": ["paid"], "needs_approval": False}]}
    monkeypatch.setattr(runtime, "complete", lambda **kw: LLMResult(
        content="", tool_calls=[], parsed=plan, model="m", deployment="d", tier="planner", locality="cloud",
        usage=Usage(), cost=Decimal(0), currency="USD", latency_ms=1, ttft_ms=None, outcome="ok", scripted=False))
    task = ai_task(tenant_a, "Pay the supplier")
    body = execute(client_for(tenant_a.member), tenant_a, task)
    assert body["execution"]["strategy"] == "blocked"
    assert any("payments_create" in need for need in body["execution"]["needs"])
    assert body["status"] == TaskStatus.BLOCKED


def test_execute_semi_automated_work_waits_for_the_plans_approval(tenant_a, client_for, engine):
    """With plan approval (the default), execute answers the strategy and the approval the plan waits for."""
    task = ai_task(tenant_a, "Prepare the weekly report and send it to the team", approve_plan=True)
    body = execute(client_for(tenant_a.member), tenant_a, task)
    assert body["execution"]["status"] == "awaiting_approval"
    assert body["execution"]["strategy"] == "decompose"
    plan = Plan.objects.for_org(tenant_a.organization).get(task=task)
    assert body["execution"]["approval"] == plan.approval_id
    assert plan.status == PlanStatus.AWAITING_APPROVAL
    assert not Task.objects.for_org(tenant_a.organization).filter(parent=task).exists()


def test_execute_other_tasks_keeps_its_answer_and_adds_the_strategy(tenant_a, client_for):
    """A task of another executor is queued as before; the answer says how (immediate)."""
    task = task_create(organization=tenant_a.organization, actor=tenant_a.member, title="noop", source="api",
                       execution_type="semi_automated", executor="noop")
    body = execute(client_for(tenant_a.member), tenant_a, task)
    assert body["status"] == TaskStatus.QUEUED
    assert body["execution"] == {"strategy": "immediate", "status": "queued"}


def test_a_person_edits_a_plan_into_a_new_version_and_bad_steps_are_refused(tenant_a, client_for, engine):
    """The latest plan can be replaced by a person's version (checked like the Manager's): a new version waiting for
    approval, the earlier approval voided; a step naming an unknown tool or a cycle is a 400 on steps."""
    client = client_for(tenant_a.member)
    task = ai_task(tenant_a, "Prepare the weekly report and send it to the team", approve_plan=True)
    execute(client, tenant_a, task)
    plan = Plan.objects.for_org(tenant_a.organization).get(task=task)
    url = f"/api/v1/orgs/{tenant_a.slug}/plans/{plan.pk}/edit/"
    bad_tool = client.post(url, {"steps": [{"id": "a", "title": "A", "tools": ["teleport"]}]}, format="json")
    assert bad_tool.status_code == 400
    assert "teleport" in str(bad_tool.json()["steps"])
    cycle = client.post(url, {"steps": [{"id": "a", "title": "A", "depends_on": ["b"]},
                                        {"id": "b", "title": "B", "depends_on": ["a"]}]}, format="json")
    assert cycle.status_code == 400
    assert "cycle" in str(cycle.json()["steps"])
    bad_id = client.post(url, {"steps": [{"id": "Bad Id", "title": "A"}]}, format="json")
    assert bad_id.status_code == 400
    good = client.post(url, {"summary": "Just the report", "steps": [
        {"id": "write_weekly_report", "title": "Write it", "tools": ["documents_generate"],
         "success_criteria": ["a PDF exists"]}]}, format="json")
    assert good.status_code == 201, good.content
    new = Plan.objects.for_org(tenant_a.organization).get(pk=good.json()["id"])
    assert (new.version, new.status, new.author_label) == (2, PlanStatus.AWAITING_APPROVAL, tenant_a.member.email)
    plan.refresh_from_db()
    assert plan.status == PlanStatus.SUPERSEDED
    assert plan.approval.status == "voided"
    listed = client.get(f"/api/v1/orgs/{tenant_a.slug}/plans/", {"task": task.pk}).json()["results"]
    assert sorted(p["version"] for p in listed) == [1, 2]


def test_other_organizations_plans_are_not_found_and_not_edited(tenants, client_for, engine):
    """B's plan is a 404 for A's member, by B's slug or A's slug; nothing changes."""
    a, b = tenants
    task = ai_task(b, "Prepare the weekly report and send it to the team", approve_plan=True)
    execute(client_for(b.member), b, task)
    plan = Plan.objects.for_org(b.organization).get(task=task)
    client = client_for(a.member)
    for slug in (a.slug, b.slug):
        assert client.get(f"/api/v1/orgs/{slug}/plans/{plan.pk}/").status_code == 404
        edit = client.post(f"/api/v1/orgs/{slug}/plans/{plan.pk}/edit/",
                           {"steps": [{"id": "x", "title": "X"}]}, format="json")
        assert edit.status_code == 404
    assert Plan.objects.for_org(b.organization).filter(task=task).count() == 1
