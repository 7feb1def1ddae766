"""The per-task event log: append in the change's transaction, publish after commit."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from accounts.consumers import org_group
from accounts.models import User
from automation.models import Task, TaskEvent

logger = logging.getLogger(__name__)

STREAM_EVENT = "task.event"
"""The ``type`` pages receive on the organization's socket for every TaskEvent."""

EventListener = Callable[[TaskEvent], None]
_listeners: list[EventListener] = []


def register_event_listener(listener: EventListener) -> None:
    """Call ``listener(event)`` for every appended TaskEvent, inside the change's transaction.

    Used by other parts of the app (notifications) to react to what the log
    records, atomically with it. A listener must be quick, must guard its own
    database work with a savepoint, and must not fail the change: its errors
    are logged and swallowed. Registering the same function twice keeps one.
    """
    if listener not in _listeners:
        _listeners.append(listener)


def unregister_event_listener(listener: EventListener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def _notify_listeners(event: TaskEvent) -> None:
    for listener in list(_listeners):
        try:
            listener(event)
        except Exception:  # a listener never undoes the change it observes
            logger.exception("event listener %r failed on %s", listener, event)


def _next_sequence(task: Task) -> int:
    # The UPDATE row-locks the task until commit, so sequences are gap-free and ordered per task.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE automation_task SET event_seq = event_seq + 1 WHERE id = %s RETURNING event_seq", [task.pk]
        )
        row = cursor.fetchone()
    if row is None:
        raise Task.DoesNotExist(f"task {task.pk} is gone")
    task.event_seq = row[0]
    return int(row[0])


def event_payload(event: TaskEvent) -> dict[str, Any]:
    """The JSON form of an event, as streamed and as the API lists it."""
    return {
        "id": event.pk,
        "task": event.task_id,
        "sequence": event.sequence,
        "type": event.type,
        "actor": event.actor_label,
        "payload": event.payload,
        "created_at": event.created_at.isoformat() if event.created_at else None,
    }


class _Streamer:
    """Sends committed events to the organization's sockets from one background thread per process.

    Publishing inline cost a few milliseconds per event on the engine's hot
    path (a fresh event loop and Redis connection per ``async_to_sync`` call);
    here one thread keeps one loop and its connections, in commit order. The
    stream is best effort (pages replay from PostgreSQL with ``?after=``), so
    events still queued when a process dies are only missed live.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[int, dict[str, Any]]] | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def submit(self, organization_id: int, data: dict[str, Any]) -> None:
        if self._pid != os.getpid():  # first use, or first use after a fork (pool processes)
            with self._lock:
                if self._pid != os.getpid():
                    self._queue = queue.SimpleQueue()
                    threading.Thread(target=self._run, args=(self._queue,), name="task-event-stream",
                                     daemon=True).start()
                    self._pid = os.getpid()
        assert self._queue is not None
        self._queue.put((organization_id, data))

    def flush(self, timeout: float = 2.0) -> None:
        """Wait (a little) until queued events are sent."""
        deadline = time.monotonic() + timeout
        while self._queue is not None and self._pid == os.getpid() and not self._queue.empty():
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)

    def _run(self, pending: queue.SimpleQueue[tuple[int, dict[str, Any]]]) -> None:
        loop = asyncio.new_event_loop()
        # A layer of its own: the process-wide one is shared with other event loops (consumers,
        # async_to_sync callers), and closing its pools there must not break this thread's loop.
        layer = _private_channel_layer()
        while True:
            organization_id, data = pending.get()
            try:
                if layer is not None:
                    loop.run_until_complete(layer.group_send(org_group(organization_id), {
                        "type": "org.event", "organization_id": organization_id, "event": STREAM_EVENT, "data": data,
                    }))
            except Exception:  # the stream is best effort: PostgreSQL holds the log and pages replay from it
                logger.warning("could not publish task event %s.%s", data.get("task"), data.get("sequence"),
                               exc_info=True)


def _private_channel_layer() -> Any:
    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    try:
        return channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    except Exception:  # no layer configured: nothing to stream to
        logger.warning("no channel layer; task events are not streamed live", exc_info=True)
        return None


_streamer = _Streamer()
atexit.register(_streamer.flush)


def _publish(organization_id: int, data: dict[str, Any]) -> None:
    _streamer.submit(organization_id, data)


def flush_stream(timeout: float = 2.0) -> None:
    """Wait until this process's committed events went out to the sockets (tests, short scripts)."""
    _streamer.flush(timeout)


def event_append(
    *,
    task: Task,
    type: str,
    actor: User | None = None,
    actor_label: str = "",
    payload: dict[str, Any] | None = None,
) -> TaskEvent:
    """Append a TaskEvent with the task's next sequence number; stream it after commit.

    Call inside the transaction of the change the event records. ``actor`` is
    the person (or ``None`` for the system; ``actor_label`` then says which
    part, e.g. ``worker:host`` or ``schedule:12``).
    """
    sequence = _next_sequence(task)
    label = actor_label or (actor.email if actor is not None and actor.pk else "system")
    event = TaskEvent(
        organization_id=task.organization_id,
        task=task,
        sequence=sequence,
        type=type,
        actor=actor if actor is not None and actor.pk else None,
        actor_label=label[:200],
        payload=json.loads(DjangoJSONEncoder().encode(payload or {})),
    )
    event.save(force_insert=True)
    data = event_payload(event)
    transaction.on_commit(lambda: _publish(task.organization_id, data))
    if _listeners:
        _notify_listeners(event)
    return event
