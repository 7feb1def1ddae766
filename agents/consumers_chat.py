"""The WebSocket of one chat thread: replay from the database after the page's cursor, then live, once each.

Protocol (JSON both ways):

* the page sends ``{"type": "resume", "cursor": {"m": <last message id>, "t": {"<task id>": <last sequence>}}}``
  after connecting (and again whenever it wants to check it missed nothing);
* the socket answers with the items after that cursor, read from PostgreSQL, then
  ``{"type": "synced", "cursor": ...}``, then streams items as they are committed;
* items: ``{"type": "message", "id", "role", "html", "task", ...}`` (the message rendered on the server) and
  ``{"type": "event", "task", "root", "step", "sequence", "event", "payload", ...}``; an approval mentioned by an
  event comes with its card (``{"type": "approval", "id", "html"}``).

Live items that arrive while a replay runs are held and sent after it, minus those it already sent. A task
event whose sequence jumps (the channel layer dropped some) makes the socket read the missing ones from the
database first, so a page sees every event of a task in order, each once.

SECURITY: the session user must be a member of the organization of the URL with ``agents:use`` (else close
4403) and own the thread (else close 4404: another member's thread and another organization's look alike).
Every item is checked against the socket's organization and thread, and membership is checked again at
least every ``RECHECK_SECONDS`` while items flow (a removed member is disconnected with 4403).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.models import Membership, Organization, User
from accounts.roles import Scope
from accounts.selectors import organization_for_member
from agents import chat_stream
from agents.chat_stream import Cursor
from agents.models import Thread

CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
RECHECK_SECONDS = 30.0
HELD_LIMIT = 2000
SEEN_MESSAGES = 5000


def _allowed(user: Any, slug: str, thread_id: int) -> tuple[Organization, Thread] | int:
    """The organization and thread of the socket, or the close code that refuses it."""
    if user is None or not getattr(user, "is_authenticated", False):
        return CLOSE_FORBIDDEN
    found = organization_for_member(user=user, slug=slug)
    if found is None or not found[1].has_scope(Scope.AGENTS_USE):
        return CLOSE_FORBIDDEN
    organization = found[0]
    thread = Thread.objects.for_org(organization).select_related("organization").filter(
        pk=thread_id, user=user).first()
    if thread is None:
        return CLOSE_NOT_FOUND
    return organization, thread


def _still_member(user_id: int, organization_id: int) -> bool:
    membership = Membership.objects.dangerously_unscoped().filter(user_id=user_id,
                                                                  organization_id=organization_id).first()
    return membership is not None and membership.has_scope(Scope.AGENTS_USE)


class ThreadConsumer(AsyncJsonWebsocketConsumer):
    """One page's live view of one of the user's threads."""

    organization_id: int | None = None
    thread: Thread | None = None
    user: User | None = None

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        self.user = self.scope.get("user")
        result = await database_sync_to_async(_allowed)(self.user, kwargs["org_slug"], int(kwargs["thread_id"]))
        if isinstance(result, int):
            await self.close(code=result)
            return
        organization, self.thread = result
        self.organization_id = organization.pk
        self.group = chat_stream.thread_group(self.thread.pk)
        self.synced = False
        self.held: list[dict[str, Any]] = []
        self.held_overflow = False
        self.task_seq: dict[int, int] = {}
        self.seen_messages: OrderedDict[int, None] = OrderedDict()
        self.checked_at = time.monotonic()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.thread is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    # --- from the page ------------------------------------------------------------------------

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if self.thread is None or not isinstance(content, dict):
            return
        if content.get("type") == "resume":
            await self._resume(Cursor.parse(content.get("cursor")))
        elif content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def _resume(self, cursor: Cursor) -> None:
        """Send what follows ``cursor`` from the database, then what was held meanwhile (each item once)."""
        self.synced = False
        self.task_seq = dict(cursor.tasks)
        if cursor.message:
            self._seen(cursor.message)
        overlap = True
        while True:
            replay = await database_sync_to_async(chat_stream.replay_items)(
                thread=self.thread, cursor=cursor, overlap=overlap)
            batch = await database_sync_to_async(self._render_replay)(replay)
            for item in batch:
                await self.send_json(item)
            cursor, overlap = replay.cursor, False
            if replay.complete:
                break
        for task_id, sequence in cursor.tasks.items():
            self.task_seq[task_id] = max(self.task_seq.get(task_id, 0), sequence)
        held, overflow = self.held, self.held_overflow
        self.held, self.held_overflow, self.synced = [], False, True
        if overflow:  # more arrived than we hold: read them again rather than lose any
            await self._resume(cursor)
            return
        for message in held:
            await self._deliver(message)
        await self.send_json({"type": "synced", "cursor": self._cursor().as_json()})

    def _cursor(self) -> Cursor:
        return Cursor(message=max(self.seen_messages, default=0), tasks=dict(self.task_seq))

    def _render_replay(self, replay: chat_stream.Replay) -> list[dict[str, Any]]:
        from agents import chat_render

        assert self.thread is not None
        items: list[tuple[str, int, dict[str, Any]]] = []
        for message in replay.messages:
            if self._seen(message.pk):
                items.append((message.created_at.isoformat(), 0,
                              chat_render.message_item(message, viewer=self.user, thread=self.thread)))
        cards: set[int] = set()
        for event, place in replay.events:
            data = chat_stream.event_item(event, place)
            items.append((data["created_at"] or "", 1, chat_render.event_item(data)))
            approval = (event.payload or {}).get("approval")
            if isinstance(approval, int):
                cards.add(approval)
        items.sort(key=lambda row: (row[0], row[1]))
        out = [item for _, _, item in items]
        out += chat_render.approval_items(organization=self.thread.organization, ids=cards, viewer=self.user,
                                          thread=self.thread)
        return out

    def _seen(self, message_id: int) -> bool:
        """Note a message id as sent; False if it was sent already."""
        if message_id in self.seen_messages:
            return False
        self.seen_messages[message_id] = None
        while len(self.seen_messages) > SEEN_MESSAGES:
            self.seen_messages.popitem(last=False)
        return True

    # --- from the channel layer -------------------------------------------------------------------

    async def chat_item(self, message: dict[str, Any]) -> None:
        # SECURITY: deliver only items of this socket's organization and thread.
        if self.thread is None or message.get("organization_id") != self.organization_id \
                or message.get("thread_id") != self.thread.pk:
            return
        if time.monotonic() - self.checked_at > RECHECK_SECONDS:
            self.checked_at = time.monotonic()
            assert self.user is not None
            assert self.organization_id is not None
            if not await database_sync_to_async(_still_member)(self.user.pk, self.organization_id):
                await self.close(code=CLOSE_FORBIDDEN)
                self.thread = None
                return
        if not self.synced:
            if len(self.held) < HELD_LIMIT:
                self.held.append(message)
            else:
                self.held_overflow = True
            return
        await self._deliver(message)

    async def _deliver(self, message: dict[str, Any]) -> None:
        data = message.get("data") or {}
        if message.get("kind") == "message":
            message_id = data.get("id")
            if not isinstance(message_id, int) or not self._seen(message_id):
                return
            item = await database_sync_to_async(self._render_message)(data)
            await self.send_json(item)
            return
        if message.get("kind") != "event":
            return
        task_id, sequence = data.get("task"), data.get("sequence")
        if not isinstance(task_id, int) or not isinstance(sequence, int):
            return
        last = self.task_seq.get(task_id, 0)
        if sequence <= last:
            return  # sent already (by the replay, or twice by the layer)
        if sequence > last + 1:  # the layer dropped some: read them from the database first
            missing = await database_sync_to_async(chat_stream.events_between)(
                thread=self.thread, task_id=task_id, after=last, before=sequence)
            for event, place in missing:
                await self._send_event(chat_stream.event_item(event, place))
        await self._send_event(data)

    async def _send_event(self, data: dict[str, Any]) -> None:
        from agents import chat_render

        task_id, sequence = data["task"], data["sequence"]
        if sequence <= self.task_seq.get(task_id, 0):
            return
        self.task_seq[task_id] = sequence
        await self.send_json(chat_render.event_item(data))
        approval = (data.get("payload") or {}).get("approval")
        if isinstance(approval, int) or (data.get("type") == "status_changed" and task_id == data.get("root")):
            cards = await database_sync_to_async(self._cards_for)(data)
            for card in cards:
                await self.send_json(card)

    def _render_message(self, data: dict[str, Any]) -> dict[str, Any]:
        from agents import chat_render
        from agents.models import Message

        assert self.thread is not None
        message = Message.objects.for_org(self.thread.organization).filter(pk=data["id"], thread=self.thread).first()
        if message is None:  # deleted since (a "clear my data"): nothing to show
            return {"type": "noop"}
        return chat_render.message_item(message, viewer=self.user, thread=self.thread)

    def _cards_for(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Fresh approval cards: the one an event names, or (a status change) every card of its request."""
        from agents import chat_render

        assert self.thread is not None
        approval = (data.get("payload") or {}).get("approval")
        if isinstance(approval, int):
            ids = {approval}
        else:
            ids = chat_render.approval_ids_of_request(organization=self.thread.organization, root_id=data["root"],
                                                      thread=self.thread)
        return chat_render.approval_items(organization=self.thread.organization, ids=ids, viewer=self.user,
                                          thread=self.thread)
