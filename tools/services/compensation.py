"""Compensation: undoing the successful calls of a group (a rolled-back workflow) in reverse order."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.errors import ServiceError
from accounts.models import Membership, Organization, User
from accounts.services.audit import audit_record
from tools.context import ToolContext
from tools.errors import ToolError
from tools.models import ToolCall
from tools.redaction import redact
from tools.registry import registry
from tools.services.invocation import _json_safe
from tools.timeouts import deadline_guard, hard_stop_grace
from tools.types import CompensationStatus, InvocationContext, Outcome

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompensationReport:
    compensated: list[int]
    failed: list[int]
    not_compensable: list[int]

    @property
    def ok(self) -> bool:
        return not self.failed


def compensate_call(*, call: ToolCall, actor: User | None, reason: str = "") -> ToolCall:
    """Run the compensation of one succeeded call and record it. Idempotent."""
    organization = call.organization
    with transaction.atomic():
        locked = ToolCall.objects.for_org(organization).select_for_update().get(pk=call.pk)
        if locked.outcome != Outcome.SUCCEEDED or locked.compensation_status in (
            CompensationStatus.COMPENSATED,
            CompensationStatus.NOT_COMPENSABLE,
        ):
            return locked
    tool = registry.get(locked.tool_name)
    if tool is None or tool.compensation is None:
        status, result, message = CompensationStatus.NOT_COMPENSABLE, None, "the tool has no compensation"
    else:
        membership = (
            Membership.objects.for_org(organization).filter(user=locked.actor).first() if locked.actor else None
        )
        ctx = ToolContext(
            organization=organization,
            actor=locked.actor,
            membership=membership,
            tool=tool,
            invocation=InvocationContext(source="compensation", group=locked.group),
            idempotency_key=f"{locked.idempotency_key}:compensate" if locked.idempotency_key else "",
            tool_call_id=locked.pk,
            deadline=time.monotonic() + tool.timeout,
        )
        try:
            with deadline_guard(tool.timeout + hard_stop_grace(tool.timeout), label=f"compensation of {tool.name}",
                                limit=tool.timeout):
                raw = tool.compensation(ctx, dict(locked.arguments), dict(locked.result or {}))
            status, result, message = CompensationStatus.COMPENSATED, _json_safe(raw or {}), ""
        except (ToolError, ServiceError) as exc:
            status, result, message = CompensationStatus.FAILED, None, ctx.scrub(exc.message)
        except Exception as exc:
            logger.exception("compensation of tool call %s failed", locked.pk)
            status, result, message = CompensationStatus.FAILED, None, ctx.scrub(f"{type(exc).__name__}: {exc}")
        result = redact(result, secret_names=tool.secret_arguments, secrets=ctx.secrets)
    with transaction.atomic():
        locked = ToolCall.objects.for_org(organization).select_for_update().get(pk=call.pk)
        locked.compensation_status = status
        locked.compensation_result = result if status != CompensationStatus.FAILED else {"error": message}
        locked.compensated_at = timezone.now()
        locked.save(update_fields=["compensation_status", "compensation_result", "compensated_at"])
        audit_record(
            organization=organization,
            actor=actor,
            action=f"tool.compensation.{status}",
            target=locked,
            target_label=f"{locked.tool_name} #{locked.pk}",
            after={"tool": locked.tool_name, "group": locked.group, "reason": reason, "error": message},
        )
    return locked


def compensate_group(
    *, organization: Organization, group: str, actor: User | None, reason: str = ""
) -> CompensationReport:
    """Compensate every succeeded call of ``group``, newest first; a failure does not stop the rest."""
    if not group:
        return CompensationReport([], [], [])
    calls = list(
        ToolCall.objects.for_org(organization)
        .filter(group=group, claimed=True, outcome=Outcome.SUCCEEDED, compensation_status=CompensationStatus.NONE)
        .select_related("organization", "actor")
        .order_by("-created_at", "-id")
    )
    compensated, failed, skipped = [], [], []
    for call in calls:
        done = compensate_call(call=call, actor=actor, reason=reason)
        bucket = {
            CompensationStatus.COMPENSATED: compensated,
            CompensationStatus.FAILED: failed,
        }.get(done.compensation_status, skipped)
        bucket.append(done.pk)
    return CompensationReport(compensated=compensated, failed=failed, not_compensable=skipped)
