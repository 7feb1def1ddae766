"""What the AI roles do, written down twice: a TaskEvent (the task's replayable log) and a thread Message.

Every plan, step, tool call, verdict, revision, question and cost goes
through :func:`activity_record`, in one transaction: the event gets the task's
next sequence number and is streamed after commit by automation; the message
(role ``manager``, ``employee``, ``supervisor``, ``tool`` or ``system``) goes
to the thread the request came from, and is pushed to the organization's
socket as ``agents.message``.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from accounts.consumers import org_group
from agents.llm.types import SCRIPTED_LABEL
from agents.models import Message, MessageRole, Thread

if TYPE_CHECKING:
    from accounts.models import User
    from agents.llm.types import LLMResult
    from automation.models import Task, TaskEvent

logger = logging.getLogger(__name__)

STREAM_MESSAGE = "agents.message"
"""The ``type`` pages receive on the organization's socket for every new thread message."""

EVENT_PREFIX = "agent."


def llm_facts(result: LLMResult | None) -> dict[str, Any]:
    """What a model call cost and who answered, for events and messages (the scripted label included)."""
    if result is None:
        return {}
    facts: dict[str, Any] = {
        "model": result.model, "deployment": result.deployment, "tier": result.tier,
        "tokens_in": result.usage.input_tokens, "tokens_out": result.usage.output_tokens,
        "cost": str(result.cost), "currency": result.currency, "latency_ms": result.latency_ms,
        "outcome": result.outcome, "call_id": result.call_id,
    }
    if result.scripted:
        facts.update(scripted=True, label=SCRIPTED_LABEL, scenario=result.scenario)
    return facts


def message_payload(message: Message) -> dict[str, Any]:
    """The JSON form of a message, as streamed and as the API lists it."""
    return {
        "id": message.pk,
        "thread": message.thread_id,
        "role": message.role,
        "content": message.content,
        "metadata": message.metadata,
        "task": message.task_id,
        "created_at": message.created_at.isoformat() if message.created_at else None,
    }


def _publish(organization_id: int, data: dict[str, Any]) -> None:
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(org_group(organization_id), {
                "type": "org.event", "organization_id": organization_id, "event": STREAM_MESSAGE, "data": data,
            })
    except Exception:  # best effort: the thread is in PostgreSQL and pages list it with ?after=
        logger.warning("could not publish message %s", data.get("id"), exc_info=True)


def message_add(
    *,
    thread: Thread,
    role: str,
    content: str,
    metadata: dict[str, Any] | None = None,
    task: Task | None = None,
    author: User | None = None,
    result: LLMResult | None = None,
) -> Message:
    """Append a message to ``thread`` (a model's answer carries ``result``: cost, model, scripted label)."""
    if role not in MessageRole.values:
        raise ValueError(f"unknown message role {role!r}")
    meta = {**(metadata or {})}
    if result is not None:
        meta.setdefault("llm", llm_facts(result))
        if result.scripted:
            meta.update(scripted=True, label=SCRIPTED_LABEL)
    encoded = DjangoJSONEncoder().encode(meta)
    with transaction.atomic():
        message = Message.objects.for_org(thread.organization).create(
            organization=thread.organization, thread=thread, role=role, content=content[:100_000],
            metadata=json.loads(encoded), task=task, author=author if author is not None and author.pk else None,
        )
        Thread.objects.for_org(thread.organization).filter(pk=thread.pk).update(
            last_message_at=message.created_at, updated_at=timezone.now()
        )
        data = message_payload(message)
        organization_id = thread.organization_id
        transaction.on_commit(lambda: _publish(organization_id, data))
    return message


def activity_record(
    *,
    task: Task,
    type: str,
    role: str,
    text: str = "",
    payload: dict[str, Any] | None = None,
    thread: Thread | None = None,
    result: LLMResult | None = None,
    mirror: bool = True,
) -> TaskEvent:
    """Append ``agent.<type>`` to the task's log and, when ``thread`` is given, mirror it as a message of ``role``."""
    from automation.services.events import event_append

    body: dict[str, Any] = {"role": role, **(payload or {})}
    if text:
        body.setdefault("text", text[:4000])
    if result is not None:
        body["llm"] = llm_facts(result)
    with transaction.atomic():
        event = event_append(task=task, type=f"{EVENT_PREFIX}{type}"[:40], actor_label=f"agent:{role}",
                             payload=body)
        if thread is not None and mirror and text:
            message_add(thread=thread, role=role, content=text, task=task, result=result,
                        metadata={"event": f"{EVENT_PREFIX}{type}", "sequence": event.sequence,
                                  **{k: v for k, v in (payload or {}).items() if _small(v)}})
    return event


def _small(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | Decimal) or value is None or (
        isinstance(value, list | dict) and len(DjangoJSONEncoder().encode(value)) < 2000
    )
