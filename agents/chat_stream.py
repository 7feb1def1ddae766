"""The live stream of one chat thread: what is pushed to its sockets, and what a socket replays from PostgreSQL.

A thread's stream holds two kinds of items, each with its own sequence:

* ``message``: a row of the thread (``Message``); its id grows with time.
* ``event``: a ``TaskEvent`` of a task the thread started (the request and its
  step subtasks); ``sequence`` is gap-free and ordered per task.

Publishing: a post-save hook on ``Message`` and a TaskEvent listener (both
registered by :func:`register` from ``AgentsConfig.ready()``) send each item,
after its transaction commits, to the channel group of its thread
(``chat.thread.<id>``), from one background thread per process. The channel
layer may drop items (channels-redis drops past a channel's capacity, and a
socket may be down): a socket asks :func:`replay_items` for everything after
its cursor, from the database, so nothing is lost.

SECURITY: every item carries ``organization_id`` and ``thread_id``; the
consumer delivers an item only when both match the socket's own.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_save
from django.utils import timezone

from agents.models import AgentWork, Message, Thread
from agents.services.activity import message_payload
from automation.models import Task, TaskEvent

logger = logging.getLogger(__name__)

ITEM_TYPE = "chat.item"
"""The channel-layer ``type`` of a stream item (handled by ``ThreadConsumer.chat_item``)."""

LATE_COMMIT_WINDOW = timedelta(seconds=120)
"""Message ids are taken at insert, not at commit: a replay also resends the messages of this window below
the cursor (the page drops the ones it has), so a message committed after a later one is not skipped."""

REPLAY_PAGE = 500


def thread_group(thread_id: int) -> str:
    return f"chat.thread.{thread_id}"


# --- the form of an item ---------------------------------------------------------------------------


def event_item(event: TaskEvent, place: TaskPlace) -> dict[str, Any]:
    """The JSON form of a TaskEvent in a thread's stream (the task's sequence, its request and its step)."""
    return {
        "task": event.task_id,
        "root": place.root_id,
        "root_title": place.title,
        "step": place.step,
        "sequence": event.sequence,
        "type": event.type,
        "actor": event.actor_label,
        "payload": event.payload,
        "created_at": event.created_at.isoformat() if event.created_at else None,
    }


def _step_of(task: Task) -> str:
    if task.parent_id is None:
        return ""
    return str((task.parameters or {}).get("step") or task.step_key or "")


# --- which thread a task belongs to (cached per process) --------------------------------------------


@dataclass(frozen=True)
class TaskPlace:
    thread_id: int
    root_id: int
    step: str
    title: str = ""  # the request's


_NOWHERE = TaskPlace(0, 0, "")
_CACHE_SIZE = 20_000
_places: OrderedDict[int, TaskPlace] = OrderedDict()
_places_lock = threading.Lock()


def _remember(task_id: int, place: TaskPlace) -> TaskPlace:
    with _places_lock:
        _places[task_id] = place
        _places.move_to_end(task_id)
        while len(_places) > _CACHE_SIZE:
            _places.popitem(last=False)
    return place


def _cached(task_id: int) -> TaskPlace | None:
    with _places_lock:
        return _places.get(task_id)


def _root_thread(task: Task) -> tuple[int, bool]:
    """The thread of a request task, and whether that answer is final (may be cached)."""
    thread = (task.parameters or {}).get("thread")
    if isinstance(thread, int) and thread > 0:
        # SECURITY: only a thread of the task's organization and of the person who asked for the task.
        owner = (Thread.objects.dangerously_unscoped().filter(organization_id=task.organization_id, pk=thread)
                 .values_list("user_id", flat=True).first())
        return (thread if owner is not None and owner == task.created_by_id else 0), True
    if task.executor != "ai":
        return 0, True  # not the AI workforce's: never in a thread
    # Scoped by hand to the task's own organization: the listener runs on the engine's hot path and the
    # task's organization row is not loaded.
    found = (AgentWork.objects.dangerously_unscoped().filter(organization_id=task.organization_id, task_id=task.pk)
             .values_list("thread_id", flat=True).first())
    if found:
        return int(found), True
    return 0, False  # an AI task not planned yet: ask again at its next event


def task_place(task: Task) -> TaskPlace | None:
    """Where ``task``'s events go: its thread, its request and its step (None: in no thread)."""
    known = _cached(task.pk)
    if known is not None:
        return known if known.thread_id else None
    if task.parent_id is None:
        thread_id, final = _root_thread(task)
        place = TaskPlace(thread_id, task.pk, "", task.title)
    else:
        parent = _cached(task.parent_id)
        if parent is None:
            row = Task.objects.dangerously_unscoped().filter(organization_id=task.organization_id,
                                                             pk=task.parent_id).first()
            if row is None:
                return None
            parent = task_place(row) or _cached(task.parent_id)
        if parent is None:
            return None
        thread_id, final = parent.thread_id, True
        place = TaskPlace(thread_id, parent.root_id, _step_of(task), parent.title)
    if final:
        _remember(task.pk, place if thread_id else _NOWHERE)
    return place if thread_id else None


# --- publishing --------------------------------------------------------------------------------------


class _Streamer:
    """Sends committed items to their thread's group from one background thread per process (in commit order)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[dict[str, Any]] | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._busy = 0

    def submit(self, message: dict[str, Any]) -> None:
        if self._pid != os.getpid():  # first use, or first use after a fork (pool processes)
            with self._lock:
                if self._pid != os.getpid():
                    self._queue = queue.SimpleQueue()
                    self._busy = 0
                    threading.Thread(target=self._run, args=(self._queue,), name="chat-stream", daemon=True).start()
                    self._pid = os.getpid()
        assert self._queue is not None
        with self._lock:
            self._busy += 1
        self._queue.put(message)

    def flush(self, timeout: float = 2.0) -> None:
        """Wait (a little) until queued items are sent."""
        deadline = time.monotonic() + timeout
        while self._pid == os.getpid() and self._busy > 0 and time.monotonic() < deadline:
            time.sleep(0.005)

    def _run(self, pending: queue.SimpleQueue[dict[str, Any]]) -> None:
        from channels.layers import get_channel_layer

        loop = asyncio.new_event_loop()
        while True:
            # Everything queued goes out together: one thread's items in order, different threads at once. A
            # busy process (its main thread holding the GIL) would otherwise starve a one-by-one sender.
            batch = [pending.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(pending.get_nowait())
                except queue.Empty:
                    break
            by_thread: dict[int, list[dict[str, Any]]] = {}
            for message in batch:
                by_thread.setdefault(message["thread_id"], []).append(message)
            try:
                layer = get_channel_layer()
                if layer is not None:
                    loop.run_until_complete(_send_batch(layer, by_thread))
            except Exception:  # never let the sender die: the stream is best effort, the database is the record
                logger.warning("could not publish %d chat items", len(batch), exc_info=True)
            finally:
                with self._lock:
                    self._busy -= len(batch)


BATCH = 200


async def _send_batch(layer: Any, by_thread: dict[int, list[dict[str, Any]]]) -> None:
    await asyncio.gather(*(_send_in_order(layer, thread_id, items) for thread_id, items in by_thread.items()))


async def _send_in_order(layer: Any, thread_id: int, items: list[dict[str, Any]]) -> None:
    for message in items:
        try:
            await layer.group_send(thread_group(thread_id), message)
        except Exception:  # best effort: PostgreSQL holds the thread and sockets replay from it
            logger.warning("could not publish chat item to thread %s", thread_id, exc_info=True)


_streamer = _Streamer()
atexit.register(_streamer.flush)


def flush_stream(timeout: float = 2.0) -> None:
    """Wait until this process's committed items went out (tests, benchmarks, short scripts)."""
    _streamer.flush(timeout)


def publish_item(*, organization_id: int, thread_id: int, kind: str, data: dict[str, Any]) -> None:
    """Queue one item for the thread's sockets (call after commit)."""
    _streamer.submit({"type": ITEM_TYPE, "organization_id": organization_id, "thread_id": thread_id, "kind": kind,
                      "data": data})


def _on_message_saved(sender: type[Message], instance: Message, created: bool, raw: bool = False,
                      **kwargs: Any) -> None:
    if not created or raw:
        return
    organization_id, thread_id, data = instance.organization_id, instance.thread_id, message_payload(instance)
    transaction.on_commit(lambda: publish_item(organization_id=organization_id, thread_id=thread_id,
                                               kind="message", data=data))


def _on_task_event(event: TaskEvent) -> None:
    """TaskEvent listener (inside the change's transaction): stream the event to its thread after commit."""
    place = task_place(event.task)
    if place is None:
        return
    organization_id, thread_id = event.organization_id, place.thread_id
    data = event_item(event, place)
    transaction.on_commit(lambda: publish_item(organization_id=organization_id, thread_id=thread_id,
                                               kind="event", data=data))


def register() -> None:
    """Connect the publishers (``AgentsConfig.ready()``; calling it twice keeps one of each)."""
    from automation.services.events import register_event_listener

    post_save.connect(_on_message_saved, sender=Message, dispatch_uid="agents.chat_stream.message")
    register_event_listener(_on_task_event)


# --- replay from the database ------------------------------------------------------------------------


@dataclass
class Cursor:
    """What a page already has: the last message id, and the last sequence per task."""

    message: int = 0
    tasks: dict[int, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Any) -> Cursor:
        """Read a cursor sent by a page; anything malformed counts as "nothing yet"."""
        if not isinstance(raw, dict):
            return cls()
        message = raw.get("m", 0)
        tasks = raw.get("t", {})
        cursor = cls(message=message if isinstance(message, int) and message > 0 else 0)
        if isinstance(tasks, dict):
            for key, value in list(tasks.items())[:500]:
                if str(key).isdigit() and isinstance(value, int) and value > 0:
                    cursor.tasks[int(key)] = value
        return cursor

    def as_json(self) -> dict[str, Any]:
        return {"m": self.message, "t": {str(k): v for k, v in self.tasks.items()}}


def thread_task_places(thread: Thread) -> dict[int, TaskPlace]:
    """Every task of the thread (requests it started and their steps), with its request and step."""
    organization = thread.organization
    ids: set[int] = set()
    for task_id, root_id in AgentWork.objects.for_org(organization).filter(thread=thread).values_list(
            "task_id", "root_id"):
        ids.update((task_id, root_id))
    ids |= set(Message.objects.for_org(organization).filter(thread=thread, task__isnull=False)
               .values_list("task_id", flat=True))
    # A request the chat has just created names the thread before its working state exists.
    ids |= set(Task.objects.for_org(organization).filter(created_by_id=thread.user_id, parent__isnull=True,
                                                         parameters__thread=thread.pk).values_list("id", flat=True))
    if not ids:
        return {}
    rows = list(Task.objects.for_org(organization).filter(Q(pk__in=ids) | Q(parent_id__in=ids)).only(
        "id", "parent_id", "parameters", "step_key", "title", "created_by_id"))
    # SECURITY: only requests the thread's owner made (a task naming someone else's thread stays out of it).
    roots = {t.pk: t.title for t in rows if t.parent_id is None and t.pk in ids and t.created_by_id == thread.user_id}
    places: dict[int, TaskPlace] = {}
    for task in rows:
        root = task.pk if task.parent_id is None else task.parent_id
        if root in roots:
            places[task.pk] = TaskPlace(thread.pk, root, _step_of(task), roots[root])
    return places


@dataclass
class Replay:
    """Items after a cursor, oldest first, and the cursor after them."""

    messages: list[Message]
    events: list[tuple[TaskEvent, TaskPlace]]
    cursor: Cursor
    complete: bool


def replay_items(*, thread: Thread, cursor: Cursor, limit: int = REPLAY_PAGE, overlap: bool = True) -> Replay:
    """What follows ``cursor`` in the thread, read from PostgreSQL (at most ``limit`` of each kind).

    Messages: ids above the cursor and, with ``overlap`` (the first page of a replay), those of the
    late-commit window below it. Events: per task, sequences above the cursor's (every sequence of a task
    it does not name). ``complete`` is False when a limit was hit: ask again with the returned cursor and
    ``overlap=False``.
    """
    organization = thread.organization
    in_thread = Message.objects.for_org(organization).filter(thread=thread)
    late: list[Message] = []
    if overlap and cursor.message:
        late = list(in_thread.filter(pk__lte=cursor.message, created_at__gte=timezone.now() - LATE_COMMIT_WINDOW)
                    .order_by("id")[:limit])
    messages = list(in_thread.filter(pk__gt=cursor.message).order_by("id")[: limit + 1])
    complete = len(messages) <= limit
    messages = late + messages[:limit]
    places = thread_task_places(thread)
    events: list[tuple[TaskEvent, TaskPlace]] = []
    if places:
        after = Q()
        for task_id in places:
            after |= Q(task_id=task_id, sequence__gt=cursor.tasks.get(task_id, 0))
        rows = list(TaskEvent.objects.for_org(organization).filter(after).order_by("created_at", "id")[: limit + 1])
        complete = complete and len(rows) <= limit
        events = [(e, places[e.task_id]) for e in rows[:limit]]
    new = Cursor(message=cursor.message, tasks=dict(cursor.tasks))
    for message in messages:
        new.message = max(new.message, message.pk)
    for event, _ in events:
        new.tasks[event.task_id] = max(new.tasks.get(event.task_id, 0), event.sequence)
    return Replay(messages=messages, events=events, cursor=new, complete=complete)


def events_between(*, thread: Thread, task_id: int, after: int, before: int) -> list[tuple[TaskEvent, TaskPlace]]:
    """The task's events with ``after < sequence < before`` (a gap in what a socket received)."""
    place = thread_task_places(thread).get(task_id)
    if place is None:
        return []
    rows = TaskEvent.objects.for_org(thread.organization).filter(
        task_id=task_id, sequence__gt=after, sequence__lt=before).order_by("sequence")[:REPLAY_PAGE]
    return [(e, place) for e in rows]
