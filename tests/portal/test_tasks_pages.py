"""Task pages: list with the API's filters and search, create form, detail with timeline and runs, actions."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEvent
from automation.models import Task, TaskDependency, TaskEvent, TaskRunLog, TaskStatus
from automation.services.tasks import task_start
from tests.automation.factories import make_run
from tests.portal.factories import make_task

pytestmark = pytest.mark.django_db


def _rows(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr id="task-(\d+)">', html)]


def test_list_filters_by_status_priority_assignee_source_and_search(tenant_a, page_for):
    """The list narrows by status (several), priority, assignee, source and full-text search."""
    org = tenant_a.organization
    laptop = make_task(org, title="Order a laptop for Maria", priority=75, assignee=tenant_a.member)
    badge = make_task(org, title="Print a badge for Maria", source="email")
    report = make_task(org, title="Weekly report", assignee=tenant_a.owner)
    task_start(task=report, actor=tenant_a.owner)
    client = page_for(tenant_a.member)
    base = f"/orgs/{tenant_a.slug}/tasks/"
    assert _rows(client.get(base).content.decode()) == [report.pk, badge.pk, laptop.pk]
    assert _rows(client.get(base, {"status": ["in_progress"]}).content.decode()) == [report.pk]
    assert set(_rows(client.get(base, {"status": ["pending", "in_progress"]}).content.decode())) == {
        report.pk, badge.pk, laptop.pk}
    assert _rows(client.get(base, {"priority": 75}).content.decode()) == [laptop.pk]
    assert _rows(client.get(base, {"assignee": "me"}).content.decode()) == [laptop.pk]
    assert _rows(client.get(base, {"assignee": str(tenant_a.owner.pk)}).content.decode()) == [report.pk]
    assert _rows(client.get(base, {"assignee": "none"}).content.decode()) == [badge.pk]
    assert _rows(client.get(base, {"source": "email"}).content.decode()) == [badge.pk]
    assert set(_rows(client.get(base, {"q": "Maria"}).content.decode())) == {laptop.pk, badge.pk}
    page = client.get(base, {"q": "laptop", "status": "pending"}).content.decode()
    assert _rows(page) == [laptop.pk]
    assert 'value="laptop"' in page
    assert 'value="pending" checked' in page


def test_a_bad_filter_answers_400_with_its_message(tenant_a, page_for):
    """An unknown status or source is refused with the filter's message, never a server error."""
    client = page_for(tenant_a.viewer)
    response = client.get(f"/orgs/{tenant_a.slug}/tasks/", {"status": "lost", "source": "fax"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "unknown status &#x27;lost&#x27;" in html
    assert "<strong>source</strong>" in html


def test_list_queries_do_not_grow_with_the_number_of_tasks(tenant_a, page_for):
    """The list page runs the same number of queries for 3 tasks as for 40 (assignees are joined)."""
    org = tenant_a.organization
    client = page_for(tenant_a.member)
    for index in range(3):
        make_task(org, title=f"Task {index}", assignee=tenant_a.member)
    client.get(f"/orgs/{tenant_a.slug}/tasks/")
    with CaptureQueriesContext(connection) as few:
        assert client.get(f"/orgs/{tenant_a.slug}/tasks/").status_code == 200
    for index in range(37):
        make_task(org, title=f"More {index}", assignee=tenant_a.owner if index % 2 else None)
    with CaptureQueriesContext(connection) as many:
        response = client.get(f"/orgs/{tenant_a.slug}/tasks/", {"q": "task more"})
    assert response.status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many]
    assert len(few) <= 12


def test_creating_a_task_from_the_form(tenant_a, page_for):
    """A member creates a task with assignee, priority, due time (organization time zone) and a dependency."""
    org = tenant_a.organization
    org.timezone = "Europe/Berlin"
    org.save()
    first = make_task(org, title="Buy the laptop")
    client = page_for(tenant_a.member)
    assert client.get(f"/orgs/{tenant_a.slug}/tasks/new/").status_code == 200
    response = client.post(f"/orgs/{tenant_a.slug}/tasks/new/", {
        "title": "Set up the laptop", "description": "For Maria", "execution_type": "manual", "executor": "noop",
        "priority": "75", "due_at": "2031-03-01T09:00", "assignee_user": str(tenant_a.member.pk),
        "depends_on": f"#{first.pk}", "parameters": "",
    })
    task = Task.objects.for_org(org).get(title="Set up the laptop")
    assert response.status_code == 302
    assert response["Location"] == f"/orgs/{tenant_a.slug}/tasks/{task.pk}/"
    assert (task.priority, task.assignee_user_id, task.created_by_id) == (75, tenant_a.member.pk, tenant_a.member.pk)
    assert task.due_at.isoformat() == "2031-03-01T08:00:00+00:00"
    assert list(TaskDependency.objects.for_org(org).filter(task=task).values_list("depends_on_id", flat=True)) == [
        first.pk]
    assert TaskEvent.objects.for_org(org).filter(task=task, type="created").count() == 1
    assert AuditEvent.objects.for_org(org).filter(action="task.created", target_id=str(task.pk)).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"title": ""}, "This field is required."),
        ({"parameters": "[1, 2]"}, "parameters must be a JSON object"),
        ({"parameters": "{nope"}, "parameters are not valid JSON"),
        ({"depends_on": "12, x"}, "&#x27;x&#x27; is not a task number"),
        ({"depends_on": "999999"}, "no task #999999 in this organization"),
        ({"executor": "wait", "execution_type": "fully_automated", "parameters": '{"seconds": "soon"}'}, "seconds"),
    ],
)
def test_bad_task_input_is_shown_on_the_form_and_nothing_is_created(tenant_a, page_for, data, message):
    """Invalid fields (the form's or the service's) answer 400 with the message and create nothing."""
    client = page_for(tenant_a.member)
    values = {"title": "Something", "execution_type": "manual", "executor": "noop", "priority": "50", **data}
    response = client.post(f"/orgs/{tenant_a.slug}/tasks/new/", values)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Task.objects.for_org(tenant_a.organization).exists()


def test_a_viewer_cannot_create_a_task(tenant_a, page_for):
    """The create form refuses a viewer (403) and creates nothing."""
    client = page_for(tenant_a.viewer)
    assert client.get(f"/orgs/{tenant_a.slug}/tasks/new/").status_code == 403
    response = client.post(f"/orgs/{tenant_a.slug}/tasks/new/", {"title": "x", "execution_type": "manual",
                                                                "executor": "noop", "priority": "50"})
    assert response.status_code == 403
    assert not Task.objects.for_org(tenant_a.organization).exists()
    assert 'href="/orgs/acme/tasks/new/"' not in client.get(f"/orgs/{tenant_a.slug}/tasks/").content.decode()


def test_detail_shows_the_timeline_in_sequence_and_the_runs_with_logs(tenant_a, page_for):
    """The timeline lists every event by sequence with its summary; each run links to its full log."""
    org = tenant_a.organization
    task = make_task(org, title="Nightly export", actor=tenant_a.owner)
    task_start(task=task, actor=tenant_a.owner)
    run = make_run(task, status="failed")
    run.log_excerpt = "…last line"
    run.error = "disk full"
    run.save()
    TaskRunLog.objects.for_org(org).create(organization=org, run=run, text="first line\n…last line")
    client = page_for(tenant_a.viewer)
    html = client.get(f"/orgs/{tenant_a.slug}/tasks/{task.pk}/").content.decode()
    assert re.findall(r'data-sequence="(\d+)"', html) == ["1", "2"]
    assert "pending → in_progress: started" in html
    assert f'data-events-url="/api/v1/orgs/{tenant_a.slug}/tasks/{task.pk}/events/"' in html
    assert 'data-last-sequence="2"' in html
    assert 'data-ws-path="/ws/orgs/acme/events/"' in html
    assert "disk full" in html
    assert f'href="/orgs/{tenant_a.slug}/tasks/{task.pk}/runs/1/"' in html
    assert "<form" not in html.split('id="actions-heading"')[1].split("</section>")[0]  # a viewer gets no buttons
    log_page = client.get(f"/orgs/{tenant_a.slug}/tasks/{task.pk}/runs/1/")
    assert log_page.status_code == 200
    assert "first line\n…last line" in log_page.content.decode()
    assert client.get(f"/orgs/{tenant_a.slug}/tasks/{task.pk}/runs/2/").status_code == 404


def test_a_member_cancels_with_a_reason_and_the_page_says_so(tenant_a, page_for):
    """Cancel goes through the service: the task is cancelled, the reason is in its timeline."""
    task = make_task(tenant_a.organization, title="Book the venue")
    client = page_for(tenant_a.member)
    response = client.post(f"/orgs/{tenant_a.slug}/tasks/{task.pk}/cancel/", {"reason": "event moved"}, follow=True)
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    html = response.content.decode()
    assert "Cancelled: #" in html
    assert "pending → cancelled: event moved" in html


def test_a_refused_action_is_shown_with_its_status_and_changes_nothing(tenant_a, page_for):
    """Retrying a task that did not fail answers 400 with the service's message; the task is untouched."""
    task = make_task(tenant_a.organization, title="Book the venue")
    client = page_for(tenant_a.member)
    response = client.post(f"/orgs/{tenant_a.slug}/tasks/{task.pk}/retry/")
    assert response.status_code == 400
    assert "only a failed task can be retried" in response.content.decode()
    response = client.post(f"/orgs/{tenant_a.slug}/tasks/{task.pk}/fail/", {"reason": ""})
    assert response.status_code == 400
    task.refresh_from_db()
    assert task.status == TaskStatus.PENDING
    assert task.event_seq == 1


def test_a_viewer_cannot_cancel_start_or_execute(tenant_a, page_for):
    """A viewer's POSTs to the actions are refused (403) and leave the task as it was."""
    manual = make_task(tenant_a.organization, title="Manual")
    semi = make_task(tenant_a.organization, title="Semi", execution_type="semi_automated")
    client = page_for(tenant_a.viewer)
    assert client.post(f"/orgs/{tenant_a.slug}/tasks/{manual.pk}/cancel/", {"reason": "no"}).status_code == 403
    assert client.post(f"/orgs/{tenant_a.slug}/tasks/{manual.pk}/start/").status_code == 403
    assert client.post(f"/orgs/{tenant_a.slug}/tasks/{semi.pk}/execute/").status_code == 403
    for task in (manual, semi):
        task.refresh_from_db()
        assert (task.status, task.event_seq, task.release_approved) == (TaskStatus.PENDING, 1, False)


def test_execute_releases_a_semi_automated_task(tenant_a, page_for):
    """A member presses Execute on a semi-automated task: it is approved to run and queued."""
    task = make_task(tenant_a.organization, title="Send invoices", execution_type="semi_automated")
    client = page_for(tenant_a.member)
    assert "Execute</button>" in client.get(f"/orgs/{tenant_a.slug}/tasks/{task.pk}/").content.decode()
    response = client.post(f"/orgs/{tenant_a.slug}/tasks/{task.pk}/execute/")
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.release_approved is True
    assert task.status == TaskStatus.QUEUED


def test_other_organizations_tasks_are_404_and_unchanged(tenants, page_for):
    """Another organization's slug or task ids answer 404 like unknown ones; POSTs change nothing."""
    a, b = tenants
    theirs = make_task(b.organization, title="Globex secret plan")
    make_run(theirs)
    client = page_for(a.owner)
    for url in [f"/orgs/{b.slug}/tasks/", f"/orgs/{b.slug}/tasks/new/", f"/orgs/{b.slug}/tasks/{theirs.pk}/",
                f"/orgs/{a.slug}/tasks/{theirs.pk}/", f"/orgs/{a.slug}/tasks/{theirs.pk}/runs/1/",
                f"/orgs/{a.slug}/tasks/{theirs.pk}/graph/", f"/orgs/{b.slug}/tasks/{theirs.pk}/graph/",
                "/orgs/no-such-org/tasks/"]:
        assert client.get(url).status_code == 404, url
    for action in ("cancel", "start", "complete", "pause"):
        assert client.post(f"/orgs/{a.slug}/tasks/{theirs.pk}/{action}/", {"reason": "x"}).status_code == 404
        assert client.post(f"/orgs/{b.slug}/tasks/{theirs.pk}/{action}/", {"reason": "x"}).status_code == 404
    assert client.post(f"/orgs/{b.slug}/tasks/new/", {"title": "x", "execution_type": "manual",
                                                       "executor": "noop", "priority": "50"}).status_code == 404
    theirs.refresh_from_db()
    assert (theirs.status, theirs.event_seq) == (TaskStatus.PENDING, 1)
    assert Task.objects.for_org(b.organization).count() == 1
    assert not Task.objects.for_org(a.organization).exists()
    assert "Globex secret plan" not in client.get(f"/orgs/{a.slug}/tasks/", {"q": "secret"}).content.decode()
