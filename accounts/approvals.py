"""Decision handlers: what happens elsewhere once an approval is decided.

Apps above accounts (tools, automation) register a handler per approval
``kind`` in their ``AppConfig.ready()``; accounts never imports them. Handlers
run after the decision commits (see ``accounts.services.approvals``) and again
from the sweep if a run failed or the process died first, so a handler must be
idempotent: it receives the approval in its final status (approved, rejected,
expired or voided) and acts only if its subject still waits on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.models import ApprovalRequest

ApprovalHandler = Callable[["ApprovalRequest"], None]

logger = logging.getLogger(__name__)

_handlers: dict[str, list[ApprovalHandler]] = {}


class HandlerNotReady(Exception):
    """Raised by a handler whose subject cannot take the decision yet (e.g. a task not parked yet).

    The approval stays un-notified and the sweep calls the handler again later.
    """


def register_approval_handler(kind: str, handler: ApprovalHandler) -> None:
    """Call ``handler(approval)`` after each decision on approvals of ``kind``.

    Registering the same function twice for a kind keeps one (``ready()`` may run twice in tests).
    """
    handlers = _handlers.setdefault(kind, [])
    if handler not in handlers:
        handlers.append(handler)


def unregister_approval_handler(kind: str, handler: ApprovalHandler) -> None:
    handlers = _handlers.get(kind, [])
    if handler in handlers:
        handlers.remove(handler)


def approval_handlers(kind: str) -> list[ApprovalHandler]:
    return list(_handlers.get(kind, []))
