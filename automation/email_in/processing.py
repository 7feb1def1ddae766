"""From the spool to the database: process one entry, or everything waiting.

Used by the SMTP receiver (at once, then on a timer and at start), by the
webhooks (at once) and by a periodic job. An entry whose processing hits an
unavailable database goes back to the spool; one that cannot be processed
at all is kept in ``failed/`` with its reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from automation.email_in.parsing import parse_message
from automation.email_in.services import Outcome, inbound_receive, resolve_recipient
from automation.email_in.spool import Spool, SpoolEntry

logger = logging.getLogger(__name__)

UNAVAILABLE = (OperationalError, InterfaceError)
"""Errors that mean the database cannot be reached now (the entry waits in the spool)."""


def tidy_connection() -> None:
    """Drop this thread's connection if it broke (the database went away) so the next use reconnects.

    A no-op inside a transaction (a caller's, or a test's).
    """
    if not connection.in_atomic_block:
        close_old_connections()


def envelope(
    *, channel: str, mail_from: str | None, recipients: list[str], peer: str = "",
    provider_verdicts: dict[str, Any] | None = None, received_at: datetime | None = None,
) -> dict[str, Any]:
    """The JSON envelope stored with a spooled message."""
    return {
        "channel": channel,
        "mail_from": mail_from,
        "recipients": recipients,
        "peer": peer,
        "provider_verdicts": provider_verdicts or {},
        "received_at": (received_at or timezone.now()).isoformat(),
    }


def entry_process(entry: SpoolEntry) -> list[Outcome]:
    """Receive one spooled message for each of its recipients (raises if the database is unavailable)."""
    meta = entry.envelope
    mail_from = meta.get("mail_from")
    mail = parse_message(entry.raw, envelope_sender=mail_from)
    received_at = parse_datetime(str(meta.get("received_at") or "")) or timezone.now()
    outcomes: list[Outcome] = []
    for address in dict.fromkeys(str(a).strip().lower() for a in meta.get("recipients") or []):
        recipient = resolve_recipient(address)
        if recipient is None:
            outcomes.append(Outcome(status="no_recipient", reason=address))
            continue
        outcomes.append(inbound_receive(
            recipient=recipient, mail=mail, raw=entry.raw, channel=str(meta.get("channel") or "smtp"),
            envelope_sender=mail_from or "", provider_verdicts=meta.get("provider_verdicts") or {},
            received_at=received_at,
        ))
    return outcomes


@dataclass
class SpoolResult:
    processed: int = 0
    deferred: int = 0
    failed: int = 0
    outcomes: list[Outcome] = field(default_factory=list)


def spool_process_entry(spool: Spool, name: str, result: SpoolResult | None = None) -> str:
    """Claim and process one entry: ``processed``, ``deferred`` (database unavailable), ``failed`` or ``taken``."""
    result = result if result is not None else SpoolResult()
    entry = spool.claim(name)
    if entry is None:
        return "taken"
    tidy_connection()
    try:
        outcomes = entry_process(entry)
    except UNAVAILABLE as exc:
        logger.warning("spool entry %s waits: the database is unavailable (%s)", name, exc)
        spool.release(name)
        result.deferred += 1
        return "deferred"
    except (DatabaseError, ValueError, TypeError, KeyError, LookupError, AttributeError, OSError) as exc:
        logger.exception("spool entry %s could not be processed", name)
        spool.fail(name, f"{type(exc).__name__}: {exc}")
        result.failed += 1
        return "failed"
    finally:
        tidy_connection()
    result.outcomes.extend(outcomes)
    if outcomes and all(o.status == "no_recipient" for o in outcomes):
        spool.fail(name, "no organization has any of these addresses: " + ", ".join(o.reason for o in outcomes))
        result.failed += 1
        return "failed"
    spool.done(name)
    result.processed += 1
    return "processed"


def spool_process(*, spool: Spool | None = None, limit: int = 500) -> SpoolResult:
    """Process what waits in the spool, oldest first; stops at the first sign the database is down."""
    spool = spool or Spool()
    spool.recover_stale()
    result = SpoolResult()
    for name in spool.pending(limit):
        if spool_process_entry(spool, name, result) == "deferred":
            break
    return result
