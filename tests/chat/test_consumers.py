"""The thread's WebSocket: who may connect, what it replays from the database, what it streams, each once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from accounts.models import Membership
from agents import chat_stream, consumers_chat
from agents.consumers_chat import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND
from agents.models import Message
from automation.models import TaskEvent
from config.asgi import application
from tests.chat.support import PLAN, flushed, make_request, make_step, make_thread, record, say, session_headers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_layer")]


def _path(slug: str, thread_id: int) -> str:
    return f"/ws/orgs/{slug}/chat/threads/{thread_id}/"


def _refused(slug: str, thread_id: int, headers) -> tuple[bool, int]:
    async def scenario() -> tuple[bool, int]:
        communicator = WebsocketCommunicator(application, _path(slug, thread_id), headers=headers)
        connected, code = await communicator.connect()
        if connected:
            await communicator.disconnect()
        return connected, code

    return async_to_sync(scenario)()


async def _until_synced(communicator: WebsocketCommunicator, timeout: float = 10) -> list[dict]:
    items = []
    while True:
        item = await communicator.receive_json_from(timeout=timeout)
        if item["type"] == "synced":
            items.append(item)
            return items
        items.append(item)


def _backdate(thread, minutes: int = 10) -> None:
    Message.objects.for_org(thread.organization).filter(thread=thread).update(
        created_at=timezone.now() - timedelta(minutes=minutes))


# --- who may connect --------------------------------------------------------------------------------


def test_anonymous_socket_is_refused(tenant_a):
    """Without a session the socket is closed with 4403."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    anonymous = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    assert _refused(tenant_a.slug, thread.pk, anonymous) == (False, CLOSE_FORBIDDEN)


def test_member_of_another_organization_is_refused(tenants):
    """A user of another organization cannot open a thread socket of this one (4403), even with a real id."""
    a, b = tenants
    thread = make_thread(a.member, a.organization)
    assert _refused(a.slug, thread.pk, session_headers(b.owner)) == (False, CLOSE_FORBIDDEN)


def test_viewer_without_the_assistant_is_refused(tenant_a):
    """A viewer (no agents:use) is refused with 4403."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    assert _refused(tenant_a.slug, thread.pk, session_headers(tenant_a.viewer)) == (False, CLOSE_FORBIDDEN)


def test_another_members_thread_and_another_organizations_thread_are_not_found(tenants):
    """Another member's thread, and another organization's thread under your own slug, both close with 4404."""
    a, b = tenants
    mine = make_thread(a.member, a.organization)
    theirs = make_thread(b.member, b.organization)
    assert _refused(a.slug, mine.pk, session_headers(a.manager)) == (False, CLOSE_NOT_FOUND)
    assert _refused(a.slug, theirs.pk, session_headers(a.member)) == (False, CLOSE_NOT_FOUND)
    assert _refused(b.slug, theirs.pk, session_headers(a.member)) == (False, CLOSE_FORBIDDEN)


# --- replay -----------------------------------------------------------------------------------------


def test_replay_sends_what_follows_the_cursor_from_the_database_then_synced(tenant_a):
    """After a cursor (last message id, last sequence per task) the socket replays exactly what follows, once."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    first = say(thread, "Onboard Maria Lopez as QA engineer")
    root = make_request(thread)
    record(root, "plan", text="Plan v1", thread=thread, version=1, steps=PLAN)
    record(root, "plan_approval_requested", role="system", version=1)
    step = make_step(root, "draft_offer_letter", thread)
    record(step, "step_started", role="employee", text="Working on the letter.", thread=thread,
           step="draft_offer_letter", revision=1)
    second = say(thread, "Thanks!")
    _backdate(thread)
    root_sequences = list(TaskEvent.objects.for_org(tenant_a.organization).filter(task=root)
                          .order_by("sequence").values_list("sequence", flat=True))
    step_sequences = list(TaskEvent.objects.for_org(tenant_a.organization).filter(task=step)
                          .order_by("sequence").values_list("sequence", flat=True))
    assert len(root_sequences) >= 3
    given = root_sequences[1]
    headers = session_headers(tenant_a.member)

    async def scenario() -> list[dict]:
        communicator = WebsocketCommunicator(application, _path(tenant_a.slug, thread.pk), headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_json_to({"type": "resume", "cursor": {"m": first.pk, "t": {str(root.pk): given}}})
        items = await _until_synced(communicator)
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return items

    items = async_to_sync(scenario)()
    messages = [i["id"] for i in items if i["type"] == "message"]
    assert first.pk not in messages
    assert messages == sorted(messages)
    assert second.pk in messages
    assert all(i["html"].startswith("<li") for i in items if i["type"] == "message")
    events = [(i["task"], i["sequence"]) for i in items if i["type"] == "event"]
    assert [s for t, s in events if t == root.pk] == [s for s in root_sequences if s > given]
    assert [s for t, s in events if t == step.pk] == step_sequences  # a task the cursor does not name: all of it
    assert len(events) == len(set(events))
    step_event = next(i for i in items if i["type"] == "event" and i["task"] == step.pk)
    assert step_event["root"] == root.pk
    assert step_event["step"] == "draft_offer_letter"
    synced = items[-1]
    assert synced["cursor"]["t"][str(root.pk)] == root_sequences[-1]
    assert synced["cursor"]["t"][str(step.pk)] == step_sequences[-1]
    assert synced["cursor"]["m"] == max(messages)


def test_replay_resends_recent_messages_below_the_cursor(tenant_a):
    """A message committed after a later id was seen is not skipped: recent messages below the cursor come again."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    old = say(thread, "an old message")
    _backdate(thread)
    recent = say(thread, "a message committed late")
    newest = say(thread, "the newest")
    headers = session_headers(tenant_a.member)

    async def scenario() -> list[dict]:
        communicator = WebsocketCommunicator(application, _path(tenant_a.slug, thread.pk), headers=headers)
        await communicator.connect()
        await communicator.send_json_to({"type": "resume", "cursor": {"m": newest.pk, "t": {}}})
        items = await _until_synced(communicator)
        await communicator.disconnect()
        return items

    ids = [i["id"] for i in async_to_sync(scenario)() if i["type"] == "message"]
    assert recent.pk in ids
    assert old.pk not in ids


def test_malformed_cursor_replays_everything(tenant_a):
    """A cursor that is not a cursor counts as "nothing yet"."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    message = say(thread, "hello")
    headers = session_headers(tenant_a.member)

    async def scenario() -> list[dict]:
        communicator = WebsocketCommunicator(application, _path(tenant_a.slug, thread.pk), headers=headers)
        await communicator.connect()
        await communicator.send_json_to({"type": "resume", "cursor": {"m": "DROP TABLE", "t": ["x"]}})
        items = await _until_synced(communicator)
        await communicator.disconnect()
        return items

    assert [i["id"] for i in async_to_sync(scenario)() if i["type"] == "message"] == [message.pk]


# --- live ---------------------------------------------------------------------------------------------


def test_live_items_arrive_after_sync_each_once(tenant_a):
    """A message and an event committed after the replay arrive live; the same item sent twice is shown once."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    root = make_request(thread)
    headers = session_headers(tenant_a.member)

    async def scenario() -> list[dict]:
        communicator = WebsocketCommunicator(application, _path(tenant_a.slug, thread.pk), headers=headers)
        await communicator.connect()
        await communicator.send_json_to({"type": "resume", "cursor": {}})
        replayed = await _until_synced(communicator)
        cursor = replayed[-1]["cursor"]
        event = await sync_to_async(record)(root, "plan", text="Plan v1", thread=thread, version=1, steps=PLAN)
        await sync_to_async(flushed)()
        got = [await communicator.receive_json_from(timeout=5), await communicator.receive_json_from(timeout=5)]
        # The layer delivers the same event again (at-least-once somewhere upstream): it is dropped.
        data = chat_stream.event_item(event, chat_stream.TaskPlace(thread.pk, root.pk, "", root.title))
        await get_channel_layer().group_send(chat_stream.thread_group(thread.pk), {
            "type": chat_stream.ITEM_TYPE, "organization_id": tenant_a.organization.pk, "thread_id": thread.pk,
            "kind": "event", "data": data})
        assert await communicator.receive_nothing(timeout=0.5)
        await communicator.disconnect()
        assert cursor["t"].get(str(root.pk), 0) < event.sequence
        return got

    got = async_to_sync(scenario)()
    assert {g["type"] for g in got} == {"event", "message"}
    event = next(g for g in got if g["type"] == "event")
    assert event["event"] == "agent.plan"
    assert event["payload"]["steps"][0]["id"] == "draft_offer_letter"
    message = next(g for g in got if g["type"] == "message")
    assert "role-manager" in message["html"]
    assert "Plan v1" in message["html"]


def test_a_dropped_event_is_read_from_the_database_before_the_next(tenant_a, monkeypatch):
    """When the layer loses events, the next one of the task makes the socket fetch the missing ones, in order."""
    thread = make_thread(tenant_a.member, tenant_a.organization)
    root = make_request(thread)
    headers = session_headers(tenant_a.member)

    async def scenario() -> list[int]:
        communicator = WebsocketCommunicator(application, _path(tenant_a.slug, thread.pk), headers=headers)
        await communicator.connect()
        await communicator.send_json_to({"type": "resume", "cursor": {}})
        await _until_synced(communicator)
        real = chat_stream.publish_item
        monkeypatch.setattr(chat_stream, "publish_item", lambda **kwargs: None)  # the layer drops these
        for n in range(3):
            await sync_to_async(record)(root, "iteration", role="employee", turn=n)
        monkeypatch.setattr(chat_stream, "publish_item", real)
        last = await sync_to_async(record)(root, "iteration", role="employee", turn=3)
        await sync_to_async(flushed)()
        got = []
        while True:
            item = await communicator.receive_json_from(timeout=5)
            got.append(item["sequence"])
            if item["sequence"] == last.sequence:
                break
        await communicator.disconnect()
        return got

    got = async_to_sync(scenario)()
    assert got == list(range(got[0], got[0] + 4))


def test_items_of_another_organization_or_thread_are_not_delivered(tenants):
    """An item naming another organization or another thread is dropped, even on this thread's group."""
    a, b = tenants
    thread = make_thread(a.member, a.organization)
    headers = session_headers(a.member)

    async def scenario() -> bool:
        communicator = WebsocketCommunicator(application, _path(a.slug, thread.pk), headers=headers)
        await communicator.connect()
        await communicator.send_json_to({"type": "resume", "cursor": {}})
        await _until_synced(communicator)
        layer = get_channel_layer()
        base = {"type": chat_stream.ITEM_TYPE, "kind": "event",
                "data": {"task": 999999, "root": 999999, "step": "", "sequence": 1, "type": "agent.plan",
                         "payload": {"secret": "of globex"}}}
        await layer.group_send(chat_stream.thread_group(thread.pk),
                               {**base, "organization_id": b.organization.pk, "thread_id": thread.pk})
        await layer.group_send(chat_stream.thread_group(thread.pk),
                               {**base, "organization_id": a.organization.pk, "thread_id": thread.pk + 1})
        nothing = await communicator.receive_nothing(timeout=0.5)
        await communicator.disconnect()
        return nothing

    assert async_to_sync(scenario)()


def test_a_task_naming_a_thread_of_another_organization_streams_nothing_to_it(tenants):
    """A task of Globex whose parameters name Acme's thread id: its events never reach Acme's socket."""
    a, b = tenants
    thread = make_thread(a.member, a.organization)
    headers = session_headers(a.member)

    async def scenario() -> bool:
        from automation.services.tasks import task_create

        communicator = WebsocketCommunicator(application, _path(a.slug, thread.pk), headers=headers)
        await communicator.connect()
        await communicator.send_json_to({"type": "resume", "cursor": {}})
        await _until_synced(communicator)
        task = await sync_to_async(task_create)(
            organization=b.organization, actor=b.member, title="Globex work", source="api", executor="ai",
            execution_type="semi_automated", parameters={"request": "x", "thread": thread.pk})
        await sync_to_async(record)(task, "plan", version=1, steps=PLAN)
        await sync_to_async(flushed)()
        nothing = await communicator.receive_nothing(timeout=0.5)
        await communicator.send_json_to({"type": "resume", "cursor": {}})
        replayed = await _until_synced(communicator)
        await communicator.disconnect()
        return nothing and all(i["type"] == "synced" for i in replayed)

    assert async_to_sync(scenario)()


def test_a_removed_member_is_disconnected_at_the_next_item(tenant_a, monkeypatch):
    """Membership is checked again while items flow: a member removed meanwhile is closed with 4403."""
    monkeypatch.setattr(consumers_chat, "RECHECK_SECONDS", 0.0)
    thread = make_thread(tenant_a.member, tenant_a.organization)
    headers = session_headers(tenant_a.member)

    async def scenario() -> dict:
        communicator = WebsocketCommunicator(application, _path(tenant_a.slug, thread.pk), headers=headers)
        await communicator.connect()
        await communicator.send_json_to({"type": "resume", "cursor": {}})
        await _until_synced(communicator)
        await sync_to_async(lambda: Membership.objects.for_org(tenant_a.organization).filter(
            user=tenant_a.member).delete())()
        await sync_to_async(say)(thread, "anyone there?", role="assistant")
        await sync_to_async(flushed)()
        output = await communicator.receive_output(timeout=5)
        await communicator.wait()
        return output

    assert async_to_sync(scenario)() == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}


def test_an_event_naming_an_approval_brings_its_card(tenant_a):
    """An approval request event is followed by the approval's card, rendered for this user."""
    from accounts.services.approvals import approval_request_create

    thread = make_thread(tenant_a.member, tenant_a.organization)
    root = make_request(thread)
    approval = approval_request_create(organization=tenant_a.organization, kind="plan", title="Approve the plan",
                                       subject_type="agents.plan", subject_id="1", requested_by=tenant_a.member)
    headers = session_headers(tenant_a.member)

    async def scenario() -> list[dict]:
        communicator = WebsocketCommunicator(application, _path(tenant_a.slug, thread.pk), headers=headers)
        await communicator.connect()
        await communicator.send_json_to({"type": "resume", "cursor": {}})
        await _until_synced(communicator)
        await sync_to_async(record)(root, "plan_approval_requested", role="system", text="Approve it", thread=thread,
                                    approval=approval.pk, kind="plan", version=1)
        await sync_to_async(flushed)()
        got = [await communicator.receive_json_from(timeout=5) for _ in range(3)]
        await communicator.disconnect()
        return got

    got = async_to_sync(scenario)()
    cards = [g for g in got if g["type"] == "approval"]
    assert len(cards) == 1
    assert cards[0]["id"] == approval.pk
    assert f'id="approval-{approval.pk}"' in cards[0]["html"]
    assert "js-decide" not in cards[0]["html"]  # a member may not decide: no buttons, a note instead
    assert "Waiting for someone who may decide it" in cards[0]["html"]
    message = next(g for g in got if g["type"] == "message")
    assert f"approval-{approval.pk}" in message["html"]
