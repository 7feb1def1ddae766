"""Event triggers: a signed inbound webhook, a task's outcome, a named event.

SECURITY: an inbound webhook call is accepted only with
``X-Staffer-Timestamp: <unix seconds>`` within ``TOLERANCE`` of now and
``X-Staffer-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + raw body>``
made with the trigger's secret, compared in constant time. A signature is
accepted once (a unique row per trigger), so a replayed call is refused.
The secret is shown once, when the trigger is created or its secret rotated,
and stored encrypted.

Triggers on task outcomes count how many trigger-created tasks led to the
current one; past ``MAX_DEPTH`` they stop firing, so two triggers cannot feed
each other forever.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.errors import Conflict, InvalidInput, NotFound, ServiceError
from accounts.models import Organization, User
from accounts.services.audit import audit_record
from automation.models import Task, TaskSource, TaskStatus
from automation.models.schedules import Schedule, ScheduleKind, Trigger, TriggerDelivery, TriggerKind
from automation.services.schedules import (
    EVENT_NAME,
    TEMPLATE_KEYS,
    TaskTemplateInput,
    check_task_template,
    template_fields,
    template_from,
)
from automation.services.tasks import task_create
from tools import crypto

logger = logging.getLogger(__name__)

TOLERANCE = timedelta(minutes=5)
MAX_DEPTH = 5
MAX_PAYLOAD_BYTES = 256 * 1024
SIGNATURE_HEADER = "X-Staffer-Signature"
TIMESTAMP_HEADER = "X-Staffer-Timestamp"
SIGNATURE_PREFIX = "sha256="
CONDITION_KEYS_FOR_TASKS = frozenset({"executor", "step_key", "source", "title", "priority", "execution_type"})


class SignatureRejected(ServiceError):
    """The webhook call is not signed by this trigger's secret (or not now)."""

    status_code = 401
    code = "bad_signature"


# --- secrets ------------------------------------------------------------------------------


def _aad(trigger: Trigger) -> bytes:
    return f"automation.trigger:{trigger.public_id}".encode()


def _seal_secret(trigger: Trigger, secret: str) -> None:
    sealed = crypto.keyring().encrypt(secret.encode(), associated_data=_aad(trigger))
    trigger.secret_key_id = sealed.key_id
    trigger.secret_nonce = sealed.nonce
    trigger.secret_ciphertext = sealed.ciphertext


def _open_secret(trigger: Trigger) -> bytes:
    if not trigger.secret_ciphertext or trigger.secret_nonce is None:
        raise SignatureRejected("this trigger has no secret")
    sealed = crypto.Sealed(
        key_id=trigger.secret_key_id, nonce=bytes(trigger.secret_nonce), ciphertext=bytes(trigger.secret_ciphertext)
    )
    try:
        return crypto.keyring().decrypt(sealed, associated_data=_aad(trigger))
    except crypto.CredentialDecryptError:
        logger.error("trigger %s: its secret does not decrypt (key removed?); rotate the secret", trigger.pk)
        raise SignatureRejected("this trigger's secret cannot be checked; rotate it") from None


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (what a caller computes)."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_PREFIX}{digest}"


# --- writes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedTrigger:
    trigger: Trigger
    secret: str | None  # webhook triggers only; shown once


def _check_conditions(kind: str, conditions: Any) -> dict[str, Any]:
    if conditions is None:
        return {}
    if not isinstance(conditions, dict):
        raise InvalidInput("conditions must be a JSON object of exact matches", field="conditions")
    if kind in (TriggerKind.TASK_COMPLETED, TriggerKind.TASK_FAILED):
        unknown = sorted(set(conditions) - CONDITION_KEYS_FOR_TASKS)
        if unknown:
            raise InvalidInput(
                f"unknown task conditions: {', '.join(unknown)}; use {', '.join(sorted(CONDITION_KEYS_FOR_TASKS))}",
                field="conditions",
            )
    for key, value in conditions.items():
        if isinstance(value, (dict, list)):
            raise InvalidInput(f"condition {key!r} must be a plain value", field="conditions")
    return dict(conditions)


def _check_kind(kind: str, event_name: str) -> str:
    if kind not in TriggerKind.values:
        raise InvalidInput(f"{kind!r} is not one of {', '.join(TriggerKind.values)}", field="kind")
    event_name = (event_name or "").strip()
    if kind == TriggerKind.EVENT:
        if not EVENT_NAME.match(event_name):
            raise InvalidInput(
                "an event trigger needs event_name: lowercase letters, digits and . _ : - (e.g. 'invoice.paid')",
                field="event_name",
            )
        return event_name
    return ""


def _snapshot(trigger: Trigger) -> dict[str, Any]:
    return {
        "name": trigger.name, "kind": trigger.kind, "event_name": trigger.event_name,
        "conditions": trigger.conditions, "enabled": trigger.enabled, "task_title": trigger.task_title,
        "task_executor": trigger.task_executor,
    }


def trigger_create(
    *,
    organization: Organization,
    actor: User | None,
    name: str,
    kind: str,
    task_title: str,
    event_name: str = "",
    conditions: dict[str, Any] | None = None,
    enabled: bool = True,
    task_description: str = "",
    task_executor: str = "noop",
    task_parameters: dict[str, Any] | None = None,
    task_execution_type: str = "fully_automated",
    task_priority: int = 50,
) -> IssuedTrigger:
    """Create a trigger; a webhook trigger gets a fresh secret, returned here once."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("a trigger needs a name of at most 200 characters", field="name")
    event_name = _check_kind(kind, event_name)
    checked_conditions = _check_conditions(kind, conditions)
    template = check_task_template(TaskTemplateInput(
        title=task_title, description=task_description, executor=task_executor, parameters=task_parameters or {},
        execution_type=task_execution_type, priority=task_priority,
    ))
    secret = secrets.token_urlsafe(32) if kind == TriggerKind.WEBHOOK else None
    with transaction.atomic():
        trigger = Trigger(
            organization=organization, name=name, kind=kind, event_name=event_name, conditions=checked_conditions,
            enabled=bool(enabled), created_by=actor if actor is not None and actor.pk else None,
            **template_fields(template),
        )
        if secret is not None:
            _seal_secret(trigger, secret)
        trigger.save(force_insert=True)
        audit_record(organization=organization, actor=actor, action="trigger.created", target=trigger,
                     after=_snapshot(trigger))
    return IssuedTrigger(trigger=trigger, secret=secret)


TRIGGER_UPDATABLE = frozenset({"name", "event_name", "conditions", "enabled", *TEMPLATE_KEYS})


def trigger_update(*, trigger: Trigger, actor: User | None, **changes: Any) -> Trigger:
    """Change a trigger's name, conditions, event name, template or enabled flag (not its kind)."""
    unknown = set(changes) - TRIGGER_UPDATABLE
    if unknown:
        raise InvalidInput(f"cannot update {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    with transaction.atomic():
        trigger = Trigger.objects.for_org(trigger.organization).select_for_update().get(pk=trigger.pk)
        before = _snapshot(trigger)
        if "name" in changes:
            name = (changes["name"] or "").strip()
            if not name or len(name) > 200:
                raise InvalidInput("a trigger needs a name of at most 200 characters", field="name")
            trigger.name = name
        if "event_name" in changes:
            trigger.event_name = _check_kind(trigger.kind, changes["event_name"])
        if "conditions" in changes:
            trigger.conditions = _check_conditions(trigger.kind, changes["conditions"])
        if "enabled" in changes:
            trigger.enabled = bool(changes["enabled"])
        if any(key in changes for key in TEMPLATE_KEYS):
            current = {key: getattr(trigger, key) for key in TEMPLATE_KEYS}
            template = check_task_template(template_from({**current, **changes}))
            for key, value in template_fields(template).items():
                setattr(trigger, key, value)
        trigger.save()
        audit_record(organization=trigger.organization, actor=actor, action="trigger.updated", target=trigger,
                     before=before, after=_snapshot(trigger))
    return trigger


def trigger_rotate_secret(*, trigger: Trigger, actor: User | None) -> IssuedTrigger:
    """Give a webhook trigger a new secret (the old one stops working at once)."""
    if trigger.kind != TriggerKind.WEBHOOK:
        raise InvalidInput("only webhook triggers have a secret", field="kind")
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        trigger = Trigger.objects.for_org(trigger.organization).select_for_update().get(pk=trigger.pk)
        _seal_secret(trigger, secret)
        trigger.save(update_fields=["secret_key_id", "secret_nonce", "secret_ciphertext", "updated_at"])
        audit_record(organization=trigger.organization, actor=actor, action="trigger.secret_rotated", target=trigger)
    return IssuedTrigger(trigger=trigger, secret=secret)


def trigger_delete(*, trigger: Trigger, actor: User | None) -> None:
    with transaction.atomic():
        audit_record(organization=trigger.organization, actor=actor, action="trigger.deleted", target=trigger,
                     before=_snapshot(trigger))
        Trigger.objects.for_org(trigger.organization).filter(pk=trigger.pk).delete()


# --- firing ------------------------------------------------------------------------------


def _matches(conditions: dict[str, Any], facts: dict[str, Any]) -> bool:
    return all(key in facts and facts[key] == value for key, value in conditions.items())


def _fire(trigger: Trigger, *, payload: dict[str, Any], now: datetime, signature: str | None = None,
          source_task: Task | None = None, depth: int = 1) -> TriggerDelivery:
    """Create the trigger's task and its delivery row (inside the caller's transaction)."""
    task = task_create(
        organization=trigger.organization,
        actor=None,
        actor_label=f"trigger:{trigger.pk}",
        title=trigger.task_title,
        description=trigger.task_description,
        source=TaskSource.TRIGGER,
        execution_type=trigger.task_execution_type,
        executor=trigger.task_executor,
        parameters=dict(trigger.task_parameters or {}),
        priority=trigger.task_priority,
        ai_context={"trigger_id": trigger.pk, "trigger": trigger.name, "payload": payload},
    )
    delivery = TriggerDelivery.objects.for_org(trigger.organization).create(
        organization=trigger.organization, trigger=trigger, received_at=now, signature=signature,
        source_task=source_task, payload=payload, task=task, depth=depth,
    )
    Trigger.objects.for_org(trigger.organization).filter(pk=trigger.pk).update(
        last_fired_at=now, fire_count=F("fire_count") + 1
    )
    return delivery


def webhook_receive(
    *,
    public_id: uuid.UUID | str,
    body: bytes,
    signature: str,
    timestamp: str,
    now: datetime | None = None,
) -> TriggerDelivery:
    """Accept a signed webhook call for trigger ``public_id`` and create its task.

    Unknown or disabled trigger: NotFound. Bad, missing or stale signature:
    SignatureRejected (401). A replayed signature: Conflict (409). A body that
    is not a JSON object: InvalidInput. Nothing is written unless accepted.
    """
    now = now or timezone.now()
    try:
        public_id = uuid.UUID(str(public_id))
    except ValueError:
        raise NotFound("Not found.") from None
    trigger = (
        Trigger.objects.dangerously_unscoped()  # SECURITY: the unguessable id names the organization
        .select_related("organization")
        .filter(public_id=public_id, kind=TriggerKind.WEBHOOK, enabled=True)
        .first()
    )
    if trigger is None:
        raise NotFound("Not found.")
    try:
        sent_at = datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise SignatureRejected(f"{TIMESTAMP_HEADER} must be the sending time in unix seconds") from None
    if abs(now - sent_at) > TOLERANCE:
        raise SignatureRejected(f"{TIMESTAMP_HEADER} is more than {int(TOLERANCE.total_seconds())} s from now")
    if not signature or not signature.startswith(SIGNATURE_PREFIX):
        raise SignatureRejected(f"{SIGNATURE_HEADER} must be 'sha256=<hex HMAC>'")
    expected = sign(_open_secret(trigger), body, int(timestamp))
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise SignatureRejected("the signature does not match this trigger's secret")
    if len(body) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(f"the body is larger than {MAX_PAYLOAD_BYTES} bytes", field="body")
    try:
        payload = json.loads(body.decode("utf-8")) if body.strip() else {}
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"the body is not JSON: {exc}", field="body") from None
    if not isinstance(payload, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    if not _matches(trigger.conditions or {}, payload):
        raise Conflict("the payload does not meet this trigger's conditions", code="conditions_not_met")
    digest = expected[len(SIGNATURE_PREFIX):]
    replayed = Conflict("this call was already received (replayed signature)", code="replayed")
    if TriggerDelivery.objects.for_org(trigger.organization).filter(trigger=trigger, signature=digest).exists():
        raise replayed
    try:
        with transaction.atomic():
            return _fire(trigger, payload=payload, now=now, signature=digest)
    except IntegrityError:  # the same call, accepted concurrently
        raise replayed from None


def fire_event(
    *,
    organization: Organization,
    name: str,
    payload: dict[str, Any] | None = None,
    source_task: Task | None = None,
    now: datetime | None = None,
) -> list[Task]:
    """Fire the named event in ``organization``: every enabled event trigger and event schedule
    with that name (and matching conditions) creates its task. Returns the tasks created.

    Other apps call this (e.g. ``fire_event(organization=org, name="invoice.paid", payload={...})``).
    """
    if not EVENT_NAME.match(name or ""):
        raise InvalidInput(f"{name!r} is not an event name", field="name")
    payload = dict(payload or {})
    now = now or timezone.now()
    created: list[Task] = []
    depth = _depth_of(source_task)
    if depth > MAX_DEPTH:
        logger.warning("event %s in org %s not fired: trigger chain deeper than %s", name, organization.pk, MAX_DEPTH)
        return created
    with transaction.atomic():
        triggers = Trigger.objects.for_org(organization).filter(kind=TriggerKind.EVENT, event_name=name, enabled=True)
        for trigger in triggers.order_by("pk"):
            if _matches(trigger.conditions or {}, payload):
                delivery = _fire(trigger, payload=payload, now=now, source_task=source_task, depth=depth)
                created.append(delivery.task)  # type: ignore[arg-type]
        schedules = Schedule.objects.for_org(organization).filter(kind=ScheduleKind.EVENT, event_name=name,
                                                                  enabled=True)
        for schedule in schedules.select_for_update().order_by("pk"):
            task = task_create(
                organization=organization, actor=None, actor_label=f"schedule:{schedule.pk}",
                title=schedule.task_title, description=schedule.task_description, source=TaskSource.SCHEDULE,
                execution_type=schedule.task_execution_type, executor=schedule.task_executor,
                parameters=dict(schedule.task_parameters or {}), priority=schedule.task_priority,
                ai_context={"schedule_id": schedule.pk, "schedule": schedule.name, "event": name, "payload": payload},
            )
            schedule.last_run_at = now
            schedule.run_count += 1
            schedule.last_task = task
            schedule.save(update_fields=["last_run_at", "run_count", "last_task", "updated_at"])
            created.append(task)
    return created


def _depth_of(task: Task | None) -> int:
    """1 + the trigger depth of the delivery that created ``task`` (1 when a person or schedule made it)."""
    if task is None:
        return 1
    parent_depth = (
        TriggerDelivery.objects.for_org(task.organization).filter(task=task).values_list("depth", flat=True).first()
    )
    return (parent_depth or 0) + 1


def on_task_finished(task: Task) -> list[Task]:
    """The engine calls this when ``task`` completed or failed, inside that change's transaction.

    Fires the organization's enabled ``task_completed`` / ``task_failed`` triggers whose
    conditions match the task. A failure here never undoes the task's change: each firing
    runs in a savepoint and errors are logged.
    """
    kind = {TaskStatus.COMPLETED: TriggerKind.TASK_COMPLETED, TaskStatus.FAILED: TriggerKind.TASK_FAILED}.get(
        task.status  # type: ignore[call-overload]
    )
    if kind is None:
        return []
    triggers = list(Trigger.objects.for_org(task.organization).filter(kind=kind, enabled=True).order_by("pk"))
    if not triggers:
        return []
    depth = _depth_of(task)
    if depth > MAX_DEPTH:
        logger.warning("task %s finished: triggers not fired, chain deeper than %s", task.pk, MAX_DEPTH)
        return []
    facts = {
        "executor": task.executor, "step_key": task.step_key, "source": task.source, "title": task.title,
        "priority": task.priority, "execution_type": task.execution_type,
    }
    payload = {
        "task": task.pk, "title": task.title, "status": task.status, "executor": task.executor,
        "step_key": task.step_key, "failure_reason": task.failure_reason,
    }
    created: list[Task] = []
    now = timezone.now()
    for trigger in triggers:
        if not _matches(trigger.conditions or {}, facts):
            continue
        try:
            with transaction.atomic():
                delivery = _fire(trigger, payload=payload, now=now, source_task=task, depth=depth)
        except (ServiceError, DatabaseError):
            logger.exception("trigger %s could not fire for task %s", trigger.pk, task.pk)
            continue
        created.append(delivery.task)  # type: ignore[arg-type]
    return created
