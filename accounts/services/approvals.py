"""Approval requests: creation, decisions, argument checks, expiry.

SECURITY: a decision is taken only by a member of the approval's own
organization who holds the approval's ``required_scope`` (by default
``approvals:decide``); a non-member gets the same answer as for a missing
approval. For a financial action the requester may not approve their own
request. An approval is bound to the SHA-256 of its canonical arguments: a
change voids it.

Each state change writes an audit event in its own transaction and, after the
commit, runs the decision handlers registered for the approval's kind
(``accounts.approvals``). ``approvals_sweep`` (a system periodic job) expires
overdue approvals and re-runs handlers that did not complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from accounts.approvals import HandlerNotReady, approval_handlers
from accounts.errors import Conflict, Forbidden, InvalidInput, NotFound
from accounts.models import ApprovalRequest, ApprovalStatus, Membership, Organization, User
from accounts.models.approvals import APPROVAL_TRANSITIONS
from accounts.roles import Scope
from accounts.services.audit import audit_record

logger = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(days=3)
# Handlers that have not completed this long after a decision are re-run by the sweep.
RENOTIFY_AFTER = timedelta(seconds=30)
SWEEP_BATCH = 500

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,39}$")


class ApprovalArgumentsChanged(Conflict):
    """The arguments differ from the ones approved: the approval is void."""

    code = "approval_arguments_changed"


class ApprovalNotUsable(Conflict):
    code = "approval_not_usable"


# --- hashing ---------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces; Decimals, dates and UUIDs as strings."""
    return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def normalize_arguments(arguments: Any) -> Any:
    """The arguments as the JSON column will return them (a round trip through canonical JSON)."""
    try:
        return json.loads(canonical_json(arguments))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"arguments must be JSON: {exc}", field="arguments") from exc


def arguments_hash(arguments: Any) -> str:
    """SHA-256 of the canonical JSON of ``arguments``."""
    return hashlib.sha256(canonical_json(normalize_arguments(arguments)).encode()).hexdigest()


# --- creation --------------------------------------------------------------------------


def approval_request_create(
    *,
    organization: Organization,
    kind: str,
    title: str,
    reason: str = "",
    requested_by: User | None = None,
    requested_by_label: str = "",
    arguments: Any = None,
    subject_type: str = "",
    subject_id: str | int = "",
    cost_estimate: Decimal | str | int | None = None,
    currency: str = "",
    financial: bool = False,
    required_scope: str = Scope.APPROVALS_DECIDE,
    expires_at: datetime | None = None,
    ttl: timedelta | None = None,
    now: datetime | None = None,
) -> ApprovalRequest:
    """Ask for a decision. ``expires_at`` defaults to ``now + ttl`` (three days)."""
    now = now or timezone.now()
    title = (title or "").strip()
    if not title:
        raise InvalidInput("say what is to be approved", field="title")
    if not _KIND.match(kind or ""):
        raise InvalidInput(f"kind {kind!r} must be a short lowercase name such as 'task'", field="kind")
    if required_scope not in Scope.all():
        raise InvalidInput(f"unknown scope {required_scope!r}", field="required_scope")
    cost = _parse_cost(cost_estimate)
    currency = (currency or "").strip().upper()
    if currency and not _CURRENCY.match(currency):
        raise InvalidInput(f"currency {currency!r} is not a three-letter ISO code", field="currency")
    if cost is not None and cost > 0 and not currency:
        raise InvalidInput("a cost estimate needs a currency", field="currency")
    if expires_at is None:
        expires_at = now + (ttl or DEFAULT_TTL)
    if expires_at <= now:
        raise InvalidInput("the expiry must be in the future", field="expires_at")
    if requested_by is not None and not Membership.objects.for_org(organization).filter(user=requested_by).exists():
        raise InvalidInput("the requester is not a member of this organization", field="requested_by")
    normalized = normalize_arguments({} if arguments is None else arguments)
    with transaction.atomic():
        approval = ApprovalRequest.objects.for_org(organization).create(
            organization=organization,
            kind=kind,
            subject_type=subject_type,
            subject_id=str(subject_id),
            title=title[:200],
            reason=reason,
            requested_by=requested_by,
            requested_by_label=requested_by_label or (requested_by.email if requested_by else "system"),
            cost_estimate=cost,
            currency=currency,
            arguments=normalized,
            arguments_hash=arguments_hash(normalized),
            financial=financial,
            required_scope=required_scope,
            expires_at=expires_at,
        )
        audit_record(
            organization=organization,
            actor=requested_by,
            actor_label=approval.requested_by_label,
            action="approval.requested",
            target=approval,
            after=_snapshot(approval),
        )
    return approval


def _parse_cost(value: Decimal | str | int | None) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        cost = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidInput(f"cost estimate {value!r} is not a number", field="cost_estimate") from exc
    if not cost.is_finite() or cost < 0:
        raise InvalidInput("the cost estimate must be a number of at least 0", field="cost_estimate")
    return cost.quantize(Decimal("0.01"))


def _snapshot(approval: ApprovalRequest) -> dict[str, Any]:
    return {
        "kind": approval.kind,
        "status": approval.status,
        "title": approval.title,
        "subject": f"{approval.subject_type}:{approval.subject_id}" if approval.subject_type else "",
        "arguments_hash": approval.arguments_hash,
        "cost_estimate": str(approval.cost_estimate) if approval.cost_estimate is not None else None,
        "currency": approval.currency,
        "financial": approval.financial,
        "expires_at": approval.expires_at.isoformat() if approval.expires_at else None,
    }


# --- decisions -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Refusal:
    error: Exception


def approval_decide(
    *,
    approval: ApprovalRequest,
    actor: User,
    approve: bool,
    reason: str = "",
    scopes: frozenset[str] | None = None,
    now: datetime | None = None,
) -> ApprovalRequest:
    """Approve or reject ``approval`` as ``actor``.

    ``scopes`` narrows the actor's role scopes (an API key's). Refused when the
    actor is not a member of the approval's organization (404), lacks the
    required scope (403), requested a financial action themself (403), the
    approval was already decided (409) or has expired (409, and it is marked
    expired). A rejection needs a reason.
    """
    reason = (reason or "").strip()
    if not approve and not reason:
        raise InvalidInput("say why it is rejected", field="reason")
    organization = approval.organization
    membership = Membership.objects.for_org(organization).filter(user=actor).first() if actor.pk else None
    if membership is None or not actor.is_active:
        raise NotFound("Not found.")
    held = membership.scopes if scopes is None else membership.scopes & scopes
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock(approval)
        outcome = _check_decidable(locked, actor=actor, held=held, now=now)
        if isinstance(outcome, _Refusal):
            if locked.status == ApprovalStatus.PENDING and _is_overdue(locked, now):
                _transition(locked, ApprovalStatus.EXPIRED, actor=None, reason="expired before a decision", now=now)
            else:
                audit_record(
                    organization=organization,
                    actor=actor,
                    action="approval.decision_refused",
                    target=locked,
                    after={"approve": approve, "refused": str(outcome.error)},
                )
        else:
            new_status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
            _transition(locked, new_status, actor=actor, reason=reason, now=now)
    _copy_into(approval, locked)
    if isinstance(outcome, _Refusal):
        raise outcome.error
    return approval


def _check_decidable(approval: ApprovalRequest, *, actor: User, held: frozenset[str], now: datetime) -> _Refusal | None:
    if approval.status != ApprovalStatus.PENDING:
        return _Refusal(Conflict(f"this approval is already {approval.status}", code="approval_decided"))
    if _is_overdue(approval, now):
        return _Refusal(Conflict("this approval has expired", code="approval_expired"))
    if approval.required_scope not in held:
        return _Refusal(Forbidden(f"deciding this needs the {approval.required_scope} scope"))
    if approval.financial and approval.requested_by_id == actor.pk:
        return _Refusal(Forbidden("you asked for this payment: someone else has to approve it"))
    return None


def approval_check_arguments(*, approval: ApprovalRequest, arguments: Any, actor: User | None = None) -> None:
    """Refuse (and void the approval) if ``arguments`` differ from those asked for.

    SECURITY: call this right before running the approved action, with the
    arguments about to be used.
    """
    if arguments_hash(arguments) == approval.arguments_hash:
        return
    approval_void(
        approval=approval,
        actor=actor,
        reason="the arguments changed after the request",
        after={"offered_hash": arguments_hash(arguments)},
    )
    raise ApprovalArgumentsChanged("the arguments changed after approval was asked; the approval is void")


def approval_require_approved(*, approval: ApprovalRequest, arguments: Any, now: datetime | None = None) -> None:
    """Refuse unless ``approval`` is approved, for exactly these ``arguments``."""
    approval_check_arguments(approval=approval, arguments=arguments)
    approval.refresh_from_db()
    if approval.status != ApprovalStatus.APPROVED:
        raise ApprovalNotUsable(f"this approval is {approval.status}, not approved")


def approval_void(
    *,
    approval: ApprovalRequest,
    actor: User | None,
    reason: str,
    after: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> ApprovalRequest:
    """Void a pending or approved approval (its subject changed or was withdrawn). Idempotent."""
    with transaction.atomic():
        locked = _lock(approval)
        if ApprovalStatus.VOIDED in APPROVAL_TRANSITIONS[locked.status]:
            _transition(locked, ApprovalStatus.VOIDED, actor=actor, reason=reason, now=now or timezone.now(),
                        extra=after)
    _copy_into(approval, locked)
    return approval


def approval_expire(*, approval: ApprovalRequest, now: datetime | None = None) -> bool:
    """Mark a pending, overdue approval expired. True if it changed."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock(approval)
        changed = locked.status == ApprovalStatus.PENDING and _is_overdue(locked, now)
        if changed:
            _transition(locked, ApprovalStatus.EXPIRED, actor=None, reason="expired before a decision", now=now)
    _copy_into(approval, locked)
    return changed


@dataclass(frozen=True)
class SweepResult:
    expired: int
    renotified: int


def approvals_sweep(*, now: datetime | None = None, batch: int = SWEEP_BATCH) -> SweepResult:
    """System job: expire overdue approvals and re-run decision handlers that did not complete.

    Every organization's rows, deliberately: this runs from the system scheduler.
    """
    now = now or timezone.now()
    expired = 0
    overdue = list(
        ApprovalRequest.objects.dangerously_unscoped()
        .filter(status=ApprovalStatus.PENDING, expires_at__lte=now)
        .select_related("organization")
        .order_by("expires_at")[:batch]
    )
    for approval in overdue:
        if approval_expire(approval=approval, now=now):
            expired += 1
    stale = list(
        ApprovalRequest.objects.dangerously_unscoped()
        .filter(notified_at__isnull=True, decided_at__lte=now - RENOTIFY_AFTER)
        .exclude(status=ApprovalStatus.PENDING)
        .select_related("organization")
        .order_by("decided_at")[:batch]
    )
    for approval in stale:
        approval_notify(approval_id=approval.pk)
    return SweepResult(expired=expired, renotified=len(stale))


# --- handlers --------------------------------------------------------------------------


def approval_notify(*, approval_id: int) -> bool:
    """Run the decision handlers of a decided approval, then stamp ``notified_at``.

    True when every handler succeeded. A failing handler is logged and the
    approval stays un-notified, for the sweep to retry.
    """
    approval = ApprovalRequest.objects.dangerously_unscoped().select_related("organization").filter(
        pk=approval_id
    ).first()
    if approval is None or approval.status == ApprovalStatus.PENDING or approval.notified_at is not None:
        return approval is not None and approval.notified_at is not None
    for handler in approval_handlers(approval.kind):
        try:
            handler(approval)
        except HandlerNotReady as exc:
            logger.info("approval %s: %s; the sweep will call the handler again", approval.pk, exc)
            return False
        except Exception:
            logger.exception("approval %s: decision handler %r failed; the sweep will retry", approval.pk, handler)
            return False
    ApprovalRequest.objects.for_org(approval.organization).filter(pk=approval.pk, notified_at__isnull=True).update(
        notified_at=timezone.now()
    )
    return True


# --- internals -------------------------------------------------------------------------


def _lock(approval: ApprovalRequest) -> ApprovalRequest:
    return (
        ApprovalRequest.objects.for_org(approval.organization)
        .select_for_update()
        .select_related("organization")
        .get(pk=approval.pk)
    )


def _is_overdue(approval: ApprovalRequest, now: datetime) -> bool:
    return approval.expires_at is not None and approval.expires_at <= now


def _transition(
    approval: ApprovalRequest,
    status: str,
    *,
    actor: User | None,
    reason: str,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    """Move ``approval`` (locked, inside a transaction) to ``status``, audit it, notify on commit."""
    if status not in APPROVAL_TRANSITIONS[approval.status]:
        raise Conflict(f"an approval cannot move from {approval.status} to {status}", code="approval_decided")
    before = {"status": approval.status}
    approval.status = status
    approval.decision_reason = reason
    if status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED):
        approval.decided_by = actor
    if approval.decided_at is None or status == ApprovalStatus.VOIDED:
        approval.decided_at = now
    approval.notified_at = None
    approval.save(update_fields=["status", "decision_reason", "decided_by", "decided_at", "notified_at", "updated_at"])
    audit_record(
        organization=approval.organization,
        actor=actor,
        actor_label="" if actor is not None else "system",
        action=f"approval.{status}",
        target=approval,
        before=before,
        after={"status": status, "reason": reason, **(extra or {})},
    )
    approval_id = approval.pk
    transaction.on_commit(lambda: approval_notify(approval_id=approval_id))


def _copy_into(target: ApprovalRequest, source: ApprovalRequest) -> None:
    for field in ("status", "decision_reason", "decided_by_id", "decided_at", "notified_at", "updated_at"):
        setattr(target, field, getattr(source, field))
