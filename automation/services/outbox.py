"""The side-effect outbox: delivery of recorded effects, once, through handlers registered by kind.

An executor asks for an effect (``ExecutionContext.emit``); the engine
records it with the step's state change under the unique idempotency key
``task:<id>:<step key>``. Delivery happens after commit, row-locked
(``SKIP LOCKED``) so two deliverers never take the same row, and passes the
idempotency key to the handler so a provider can drop a repeat after a crash
between its call and our commit. Apps register handlers for their kinds
(``email``, ``http``…); ``record`` is built in and has no outside effect.
Effects of a kind with no handler yet stay pending until one is registered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from automation.models import SideEffect, SideEffectStatus

logger = logging.getLogger(__name__)

DELIVER = "automation.deliver_effects"
MAX_DELIVERY_ATTEMPTS = 10

EffectHandler = Callable[[SideEffect], Any]
_handlers: dict[str, EffectHandler] = {}


def idempotency_key(task_id: int, key: str) -> str:
    """The outbox key of one step's effect: the same on every attempt."""
    return f"task:{task_id}:{key}"[:255]


def register_effect_handler(kind: str, handler: EffectHandler) -> None:
    """Deliver effects of ``kind`` with ``handler(effect) -> result`` (raise to retry later)."""
    _handlers[kind] = handler


def _record(effect: SideEffect) -> dict[str, Any]:
    return {"recorded": True}


register_effect_handler("record", _record)


def deliver_on_commit(organization_id: int) -> None:
    """Ask a worker to deliver the organization's pending effects once this transaction commits."""
    from config.celery import app

    def send() -> None:
        try:
            app.send_task(DELIVER, kwargs={"organization_id": organization_id},
                          retry=True, retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.5})
        except Exception:
            logger.warning("could not publish effect delivery; the reconciler will", exc_info=True)

    transaction.on_commit(send)


def deliver_pending(*, organization_id: int | None = None, limit: int = 100) -> int:
    """Deliver pending effects (of one organization, or all); return how many were delivered."""
    delivered = 0
    tried: list[int] = []
    for _ in range(limit):
        with transaction.atomic():
            rows = SideEffect.objects.dangerously_unscoped().select_for_update(skip_locked=True).filter(
                status=SideEffectStatus.PENDING, delivery_attempts__lt=MAX_DELIVERY_ATTEMPTS, kind__in=list(_handlers)
            )
            if organization_id is not None:
                rows = rows.filter(organization_id=organization_id)
            effect = rows.exclude(pk__in=tried).order_by("pk").first()
            if effect is None:
                break
            tried.append(effect.pk)
            handler = _handlers[effect.kind]
            effect.delivery_attempts += 1
            try:
                effect.result = handler(effect)
            except Exception as exc:  # noqa: BLE001 - any handler error means: try again later
                effect.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                if effect.delivery_attempts >= MAX_DELIVERY_ATTEMPTS:
                    effect.status = SideEffectStatus.FAILED
                effect.save(update_fields=["delivery_attempts", "last_error", "status"])
                continue
            effect.status = SideEffectStatus.DELIVERED
            effect.delivered_at = timezone.now()
            effect.save(update_fields=["delivery_attempts", "result", "status", "delivered_at"])
            delivered += 1
    return delivered
