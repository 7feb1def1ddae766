"""Which thread a task's events stream to, and which tasks a thread replays."""

from __future__ import annotations

from agents.chat_stream import Cursor, task_place, thread_task_places
from automation.services.tasks import task_create
from tests.chat.support import make_request, make_step, make_thread


def _api_task(tenant, user, thread_id: int):
    return task_create(organization=tenant.organization, actor=user, title="Someone else's work", source="api",
                       executor="ai", execution_type="semi_automated", parameters={"request": "x", "thread": thread_id})


def test_a_request_and_its_steps_stream_to_the_thread_that_asked(tenant_a):
    """The request (named by its parameters before any working state exists) and its steps land in its thread."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    fresh = _api_task(tenant_a, tenant_a.member, thread.pk)  # no AgentWork yet
    assert task_place(fresh).thread_id == thread.pk
    assert fresh.pk in thread_task_places(thread)
    root = make_request(thread)
    step = make_step(root, "draft_offer_letter", thread)
    place = task_place(step)
    assert (place.thread_id, place.root_id, place.step) == (thread.pk, root.pk, "draft_offer_letter")
    assert thread_task_places(thread)[step.pk].root_id == root.pk


def test_a_task_naming_a_colleagues_thread_streams_nowhere(tenant_a):
    """A task created by one member that names another member's thread neither streams to it nor replays in it."""
    theirs = make_thread(tenant_a.manager, tenant_a.organization)
    task = _api_task(tenant_a, tenant_a.member, theirs.pk)
    assert task_place(task) is None
    assert task.pk not in thread_task_places(theirs)


def test_a_task_without_a_thread_streams_nowhere(tenant_a):
    """A plain task (not the AI workforce's, no thread) is in no thread."""
    task = task_create(organization=tenant_a.organization, actor=tenant_a.member, title="Manual", source="api",
                       execution_type="manual")
    assert task_place(task) is None


def test_cursor_parsing_is_strict():
    """Only positive integers are kept; at most 500 tasks; anything else reads as "nothing yet"."""
    cursor = Cursor.parse({"m": 12, "t": {"5": 3, "x": 1, "6": -1, "7": "9", **{str(n): 1 for n in range(100, 700)}}})
    assert cursor.message == 12
    assert cursor.tasks[5] == 3
    assert 6 not in cursor.tasks
    assert 7 not in cursor.tasks
    assert len(cursor.tasks) <= 500
    assert Cursor.parse("nonsense").as_json() == {"m": 0, "t": {}}
