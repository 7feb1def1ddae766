"""Invoking a tool: the only path from an agent, a workflow or the API to a side effect.

validate → authorize (role scopes, the organization's restrictions, object
permissions) → idempotency replay → budget → approval (bound to the SHA-256
of the exact arguments) → claim the idempotency key → execute under a
deadline → ToolCall record (arguments redacted) → audit event.

Every refusal is recorded as a ToolCall with a reason code and an audit
event, and nothing runs. Refusals are returned, not raised, so a model or a
workflow can read the reason; the API maps outcomes to status codes.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from jsonschema import Draft202012Validator

from accounts.errors import Conflict, ServiceError
from accounts.models import ApprovalRequest, ApprovalStatus, Membership, Organization, User
from accounts.roles import Role, Scope
from accounts.services.approvals import (
    ApprovalArgumentsChanged,
    approval_request_create,
    approval_require_approved,
    arguments_hash,
)
from accounts.services.audit import audit_record
from tools.context import ToolContext
from tools.errors import ToolError, ToolRefused, ToolTimeout
from tools.models import IntegrationCredential, ToolCall, ToolSetting
from tools.policy import approval_reasons
from tools.redaction import redact
from tools.registry import Tool, registry
from tools.services.budgets import budget_alerts_raise, budget_check
from tools.timeouts import deadline_guard, hard_stop_grace
from tools.types import InvocationContext, Money, Outcome

logger = logging.getLogger(__name__)

APPROVAL_KIND = "tool_call"
MAX_KEY = 200
MAX_RESULT_CHARS = 1_000_000


@dataclass(frozen=True)
class InvocationResult:
    """What happened. ``ok`` only when the tool ran and succeeded."""

    outcome: str
    code: str = ""
    reason: str = ""
    result: Any = None
    tool_call: ToolCall | None = None
    approval: ApprovalRequest | None = None
    replayed: bool = False
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.SUCCEEDED

    def for_model(self) -> dict[str, Any]:
        """A compact answer to hand back to a language model."""
        body: dict[str, Any] = {"outcome": self.outcome}
        if self.ok:
            body["result"] = self.result
        else:
            body["reason"] = self.reason
            body["code"] = self.code
        if self.errors:
            body["errors"] = self.errors
        if self.approval is not None:
            body["approval_id"] = self.approval.pk
        return body


class _Refusal(Exception):
    def __init__(self, code: str, reason: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.errors = errors or {}


# --- helpers -----------------------------------------------------------------------------


def binding_for(tool_name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """What an approval is bound to: the tool and its exact arguments."""
    return {"tool": tool_name, "arguments": arguments}


def schema_errors(tool: Tool, arguments: Any) -> dict[str, list[str]]:
    """Field-level messages for arguments that do not match the tool's schema."""
    if not isinstance(arguments, dict):
        return {"arguments": ["arguments must be a JSON object"]}
    errors: dict[str, list[str]] = {}
    validator = Draft202012Validator(tool.parameters)
    for error in sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path)
        if not path and error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            path = missing or "arguments"
        elif not path and error.validator == "additionalProperties":
            path = "arguments"
        errors.setdefault(path or "arguments", []).append(error.message[:300])
    return errors


def _json_safe(value: Any) -> Any:
    """``value`` as stored JSON: PostgreSQL's jsonb cannot hold NUL characters, so they are replaced."""
    text = json.dumps(value, cls=DjangoJSONEncoder)
    if "\\u0000" in text:
        text = text.replace("\\u0000", "\\ufffd")
    return json.loads(text)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def _setting_for(organization: Organization, tool_name: str) -> ToolSetting | None:
    return ToolSetting.objects.for_org(organization).filter(tool_name=tool_name).first()


def provider_configured(organization: Organization, provider: str) -> bool:
    return IntegrationCredential.objects.for_org(organization).filter(provider=provider).exists()


def tool_enabled(tool: Tool, setting: ToolSetting | None) -> bool:
    return setting.enabled if setting is not None else tool.enabled_by_default


def tool_permitted(tool: Tool, setting: ToolSetting | None, *, role: int, scopes: frozenset[str]) -> str:
    """Why ``role`` with ``scopes`` may not use ``tool`` (empty when it may)."""
    if tool.scope not in scopes:
        return f"{tool.name} needs the {tool.scope} scope"
    if tool.financial and Scope.TOOLS_FINANCIAL not in scopes:
        return f"{tool.name} moves money and needs the {Scope.TOOLS_FINANCIAL} scope"
    if setting is not None and setting.min_role is not None and role < setting.min_role:
        return f"{tool.name} is limited to {Role(setting.min_role).label} and above in this organization"
    return ""


# --- the pipeline --------------------------------------------------------------------------


def invoke_tool(
    *,
    organization: Organization,
    actor: User,
    tool_name: str,
    arguments: Any,
    idempotency_key: str = "",
    approval: ApprovalRequest | int | None = None,
    context: InvocationContext | None = None,
) -> InvocationResult:
    """Run ``tool_name`` for ``actor`` in ``organization``, or say why not."""
    context = context or InvocationContext()
    idempotency_key = (idempotency_key or "").strip()
    tool = registry.get(tool_name)
    base = _Record(organization=organization, actor=actor, tool=tool, tool_name=tool_name, context=context,
                   idempotency_key=idempotency_key, arguments=arguments)
    try:
        if len(idempotency_key) > MAX_KEY:
            raise _Refusal("invalid_arguments", f"the idempotency key is longer than {MAX_KEY} characters",
                           {"idempotency_key": [f"at most {MAX_KEY} characters"]})
        if tool is None:
            raise _Refusal("unknown_tool", f"there is no tool named {tool_name!r}")
        setting = _setting_for(organization, tool.name)
        if not tool_enabled(tool, setting):
            raise _Refusal("tool_disabled", f"{tool.name} is turned off in this organization")
        membership = Membership.objects.for_org(organization).filter(user=actor).first() if actor.pk else None
        if membership is None or not actor.is_active:
            raise _Refusal("forbidden", "only a member of the organization can use its tools")
        scopes = membership.scopes if context.scopes is None else membership.scopes & context.scopes
        denied = tool_permitted(tool, setting, role=membership.role, scopes=scopes)
        if denied:
            raise _Refusal("forbidden", denied)
        if tool.provider and not provider_configured(organization, tool.provider):
            raise _Refusal("not_configured", f"{tool.name} needs a {tool.provider} credential; an admin adds one first")
        errors = schema_errors(tool, arguments)
        if not errors and _has_nul(arguments):
            errors = {"arguments": ["text may not contain NUL characters"]}
        if errors:
            raise _Refusal("invalid_arguments", "the arguments do not match the tool's parameters", errors)
        ctx = ToolContext(organization=organization, actor=actor, membership=membership, tool=tool,
                          setting=setting, invocation=context, idempotency_key=idempotency_key)
        if tool.authorize is not None:
            try:
                tool.authorize(ctx, arguments)
            except ServiceError as exc:
                raise _Refusal("forbidden", exc.message) from exc
            except ToolRefused as exc:
                raise _Refusal(exc.code, exc.message) from exc
        digest = arguments_hash(binding_for(tool.name, arguments))
        base.digest = digest
        if idempotency_key:
            stored = _claimed_call(organization, idempotency_key)
            if stored is not None:
                return _replay(stored, tool_name=tool.name, digest=digest)
        money = tool.amount(arguments) if tool.amount is not None else None
        base.money = money
        if money is not None and tool.financial:
            verdict = budget_check(organization=organization, money=money)
            if not verdict.allowed:
                raise _Refusal("over_budget", verdict.reason)
        reasons = approval_reasons(tool=tool, setting=setting, role=membership.role, arguments=arguments,
                                   money=money, organization=organization)
        used_approval: ApprovalRequest | None = None
        if reasons:
            found = _resolve_approval(organization=organization, actor=actor, tool=tool, arguments=arguments,
                                      approval=approval, idempotency_key=idempotency_key, digest=digest)
            if not isinstance(found, ApprovalRequest) or found.status != ApprovalStatus.APPROVED:
                return _ask_approval(base, reasons=reasons, pending=found)
            used_approval = found
        ctx.approval = used_approval
        return _claim_and_run(base, ctx=ctx, approval=used_approval)
    except _Refusal as refusal:
        return _record_refusal(base, refusal)


@dataclass
class _Record:
    organization: Organization
    actor: User
    tool: Tool | None
    tool_name: str
    context: InvocationContext
    idempotency_key: str
    arguments: Any
    digest: str = ""
    money: Money | None = None

    def cost_estimate(self) -> Decimal:
        if self.tool is None or not isinstance(self.arguments, dict):
            return Decimal(0)
        try:
            return self.tool.estimate_cost(self.arguments)
        except (KeyError, TypeError, ValueError, ArithmeticError):  # unexpected arguments (a refused call)
            return Decimal(0)

    def fields(self) -> dict[str, Any]:
        tool = self.tool
        arguments = self.arguments if isinstance(self.arguments, dict) else {"_raw": repr(self.arguments)[:500]}
        return {
            "organization": self.organization,
            "tool_name": self.tool_name[:64],
            "side_effect": tool.side_effect if tool else "",
            "actor": self.actor if self.actor.pk else None,
            "actor_label": self.actor.email if self.actor.pk else "system",
            "source": self.context.source[:40],
            "group": self.context.group[:100],
            "task_id": str(self.context.task_id)[:64],
            "step_id": str(self.context.step_id)[:64],
            "idempotency_key": self.idempotency_key[:MAX_KEY],
            "arguments": _json_safe(redact(arguments, secret_names=tool.secret_arguments if tool else ())),
            "arguments_hash": self.digest,
            "cost_estimate": self.cost_estimate(),
            "amount": self.money.amount if self.money else None,
            "currency": self.money.currency if self.money else "",
            "metadata": _json_safe(self.context.metadata),
        }


def _audit(call: ToolCall, *, actor: User | None, extra: dict[str, Any] | None = None) -> None:
    audit_record(
        organization=call.organization,
        actor=actor if actor is not None and actor.pk else None,
        action=f"tool.{call.outcome}",
        target=call,
        target_label=f"{call.tool_name} #{call.pk}",
        after={
            "tool": call.tool_name,
            "outcome": call.outcome,
            "reason_code": call.reason_code,
            "reason": call.reason[:500],
            "idempotency_key": call.idempotency_key,
            "arguments_hash": call.arguments_hash,
            "duration_ms": call.duration_ms,
            "amount": call.amount,
            "currency": call.currency,
            "group": call.group,
            **(extra or {}),
        },
    )


def _record_refusal(base: _Record, refusal: _Refusal) -> InvocationResult:
    with transaction.atomic():
        call = ToolCall.objects.for_org(base.organization).create(
            **base.fields(),
            outcome=Outcome.REFUSED,
            reason_code=refusal.code,
            reason=refusal.reason.replace("\x00", "\ufffd"),
            result=_json_safe({"errors": refusal.errors}) if refusal.errors else None,
            finished_at=timezone.now(),
        )
        _audit(call, actor=base.actor)
    return InvocationResult(outcome=Outcome.REFUSED, code=refusal.code, reason=refusal.reason, tool_call=call,
                            errors=refusal.errors)


def _claimed_call(organization: Organization, key: str) -> ToolCall | None:
    return ToolCall.objects.for_org(organization).filter(claimed=True, idempotency_key=key).first()


def _replay(stored: ToolCall, *, tool_name: str, digest: str) -> InvocationResult:
    """The stored outcome of an earlier call with the same key (or a conflict)."""
    if stored.tool_name != tool_name or stored.arguments_hash != digest:
        raise _Refusal(
            "idempotency_conflict",
            f"the idempotency key was used for a different call (#{stored.pk}); use a new key for new arguments",
        )
    if stored.outcome == Outcome.RUNNING:
        return InvocationResult(outcome=Outcome.RUNNING, code="in_progress",
                                reason="the same call is still running", tool_call=stored, replayed=True)
    return InvocationResult(outcome=stored.outcome, code=stored.reason_code, reason=stored.reason,
                            result=stored.result, tool_call=stored, replayed=True)


def _resolve_approval(
    *,
    organization: Organization,
    actor: User,
    tool: Tool,
    arguments: dict[str, Any],
    approval: ApprovalRequest | int | None,
    idempotency_key: str,
    digest: str,
) -> ApprovalRequest | None:
    """The approval that authorizes this call, a pending one it waits on, or ``None`` (ask anew).

    Raises a refusal for an approval that is not this call's, was tampered
    with, was decided against, or was approved by the requester themself.
    """
    if approval is None and idempotency_key:
        waiting = (
            ToolCall.objects.for_org(organization)
            .filter(idempotency_key=idempotency_key, tool_name=tool.name, arguments_hash=digest,
                    outcome__in=[Outcome.NEEDS_APPROVAL, Outcome.REJECTED], approval__isnull=False)
            .select_related("approval")
            .order_by("-id")
            .first()
        )
        if waiting is None:
            return None
        approval = waiting.approval
        assert approval is not None
        if approval.status == ApprovalStatus.PENDING:
            return approval
        if approval.status == ApprovalStatus.REJECTED:
            raise _Refusal("approval_rejected",
                           f"approval #{approval.pk} was rejected: {approval.decision_reason or 'no reason given'}")
        if approval.status != ApprovalStatus.APPROVED:
            return None  # expired or voided: ask again
    elif approval is None:
        return None
    if not isinstance(approval, ApprovalRequest):
        found = ApprovalRequest.objects.for_org(organization).filter(pk=approval).first()
    else:
        # SECURITY: re-read inside this organization, so another organization's approval is "not found".
        found = ApprovalRequest.objects.for_org(organization).filter(pk=approval.pk).first()
    if found is None or found.kind != APPROVAL_KIND:
        raise _Refusal("approval_invalid", "that approval was not found for this organization's tool calls")
    if found.status == ApprovalStatus.PENDING:
        return found
    try:
        approval_require_approved(approval=found, arguments=binding_for(tool.name, arguments))
    except ApprovalArgumentsChanged as exc:
        raise _Refusal("approval_arguments_changed", exc.message) from exc
    except Conflict as exc:
        raise _Refusal("approval_not_usable", exc.message) from exc
    if found.requested_by_id != actor.pk:
        raise _Refusal("approval_invalid", "that approval was asked for by someone else")
    decider = found.decided_by_id
    if decider is None:
        raise _Refusal("approval_not_usable", "the approval has no decider")
    if decider == actor.pk or decider == found.requested_by_id:
        raise _Refusal("approval_self", "an approval by the person who asked does not count; someone else decides")
    decider_membership = Membership.objects.for_org(organization).filter(user_id=decider).first()
    if decider_membership is None or found.required_scope not in decider_membership.scopes:
        raise _Refusal("approval_not_usable", "the approver is no longer allowed to decide this")
    return found


def _ask_approval(base: _Record, *, reasons: list[str], pending: ApprovalRequest | None) -> InvocationResult:
    tool = base.tool
    assert tool is not None
    reason = "; ".join(reasons)
    if pending is not None:
        waiting = ToolCall.objects.for_org(base.organization).filter(approval=pending).order_by("-id").first()
        return InvocationResult(outcome=Outcome.NEEDS_APPROVAL, code="approval_required",
                                reason=f"waiting for approval #{pending.pk}: {reason}", tool_call=waiting,
                                approval=pending)
    money = base.money
    with transaction.atomic():
        call = ToolCall.objects.for_org(base.organization).create(
            **base.fields(), outcome=Outcome.NEEDS_APPROVAL, reason_code="approval_required", reason=reason
        )
        approval = approval_request_create(
            organization=base.organization,
            kind=APPROVAL_KIND,
            title=f"Run {tool.title or tool.name}"[:200],
            reason=f"Needs approval because {reason}.",
            requested_by=base.actor,
            arguments=binding_for(tool.name, call.arguments if tool.secret_arguments else base.arguments),
            subject_type="tools.toolcall",
            subject_id=call.pk,
            cost_estimate=money.major() if money else None,
            currency=money.currency if money else "",
            financial=tool.financial,
            required_scope=Scope.TOOLS_FINANCIAL if tool.financial else Scope.APPROVALS_DECIDE,
        )
        call.approval = approval
        call.save(update_fields=["approval"])
        _audit(call, actor=base.actor, extra={"approval_id": approval.pk})
    return InvocationResult(outcome=Outcome.NEEDS_APPROVAL, code="approval_required",
                            reason=f"approval #{approval.pk} was requested: {reason}", tool_call=call,
                            approval=approval)


def _claim(base: _Record, *, approval: ApprovalRequest | None) -> ToolCall | InvocationResult:
    """Insert the claimed, running call (budget re-checked under a lock), or return the winner's outcome."""
    try:
        with transaction.atomic():
            if base.money is not None and base.tool is not None and base.tool.financial:
                verdict = budget_check(organization=base.organization, money=base.money, lock=True)
                if not verdict.allowed:
                    raise _Refusal("over_budget", verdict.reason)
            return ToolCall.objects.for_org(base.organization).create(
                **base.fields(), claimed=True, outcome=Outcome.RUNNING, approval=approval, started_at=timezone.now()
            )
    except IntegrityError:
        if base.idempotency_key:
            stored = _claimed_call(base.organization, base.idempotency_key)
            if stored is not None:
                return _replay(stored, tool_name=base.tool_name, digest=base.digest)
        if approval is not None:
            raise _Refusal("approval_used", f"approval #{approval.pk} was already used by another call") from None
        raise


def _drop_broken_connection() -> None:
    """After a hard stop the database connection may have been interrupted mid-query: replace it if so."""
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


def _claim_and_run(base: _Record, *, ctx: ToolContext, approval: ApprovalRequest | None) -> InvocationResult:
    tool = ctx.tool
    claimed = _claim(base, approval=approval)
    if isinstance(claimed, InvocationResult):
        return claimed
    call = claimed
    ctx.tool_call_id = call.pk
    started = time.monotonic()
    ctx.deadline = started + tool.timeout
    outcome, code, reason, result = Outcome.SUCCEEDED, "", "", None
    try:
        with deadline_guard(tool.timeout + hard_stop_grace(tool.timeout), label=tool.name, limit=tool.timeout):
            raw = tool.handler(ctx, base.arguments)
        result = _json_safe(raw if raw is not None else {})
        if len(json.dumps(result)) > MAX_RESULT_CHARS:
            outcome, code, reason, result = Outcome.FAILED, "result_too_large", "the tool returned too much", None
    except ToolTimeout as exc:
        outcome, code, reason = Outcome.TIMED_OUT, exc.code, exc.message
        _drop_broken_connection()
    except ToolRefused as exc:
        outcome, code, reason = Outcome.REFUSED, exc.code, exc.message
    except ToolError as exc:
        outcome, code, reason = Outcome.FAILED, exc.code, exc.message
    except ServiceError as exc:
        outcome, code, reason = Outcome.REFUSED, exc.code, exc.message
    except Exception as exc:
        logger.exception("tool %s (call %s) raised", tool.name, call.pk)
        outcome, code, reason = Outcome.FAILED, "error", f"{type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - started
    call.outcome = outcome
    call.reason_code = code[:40]
    call.reason = ctx.scrub(reason).replace("\x00", "\ufffd")[:2000]
    call.result = _json_safe(redact(result, secret_names=tool.secret_arguments, secrets=ctx.secrets))
    call.duration_ms = int(elapsed * 1000)
    call.cost = ctx.cost if ctx.cost is not None else (call.cost_estimate if outcome == Outcome.SUCCEEDED else None)
    call.finished_at = timezone.now()
    if outcome == Outcome.REFUSED:
        call.claimed = False  # nothing happened: the key (and the approval) may be used again
    with transaction.atomic():
        call.save(update_fields=["outcome", "reason_code", "reason", "result", "duration_ms", "cost",
                                 "finished_at", "claimed"])
        _audit(call, actor=base.actor, extra={"approval_id": approval.pk} if approval else None)
    if base.money is not None and tool.financial and outcome != Outcome.REFUSED:
        budget_alerts_raise(organization=base.organization, currency=base.money.currency)
    return InvocationResult(outcome=outcome, code=code, reason=call.reason, result=call.result, tool_call=call,
                            approval=approval)


__all__ = ["InvocationResult", "invoke_tool", "schema_errors", "tool_enabled", "tool_permitted"]
