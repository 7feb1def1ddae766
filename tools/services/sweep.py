"""The repair pass for calls that never finished (their process died mid-call)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.services.audit import audit_record
from tools.models import ToolCall
from tools.registry import registry
from tools.timeouts import hard_stop_grace
from tools.types import Outcome

MARGIN = timedelta(seconds=60)
DEFAULT_TIMEOUT = 120.0


def tool_calls_sweep_stale(*, now: datetime | None = None, batch: int = 500) -> int:
    """Mark running calls past their timeout (plus a margin) as failed with code ``interrupted``.

    System job: every organization's rows, deliberately. The key stays claimed
    (whether the effect happened is unknown), so a retry with the same key
    gets this failure instead of acting a second time; a person decides.
    """
    now = now or timezone.now()
    candidates = list(
        ToolCall.objects.dangerously_unscoped()
        .filter(outcome=Outcome.RUNNING, started_at__lt=now - MARGIN)
        .values_list("pk", "tool_name", "started_at")[:batch]
    )
    swept = 0
    for pk, tool_name, started_at in candidates:
        tool = registry.get(tool_name)
        timeout = tool.timeout if tool is not None else DEFAULT_TIMEOUT
        if started_at > now - timedelta(seconds=timeout + hard_stop_grace(timeout)) - MARGIN:
            continue  # still within its time
        with transaction.atomic():
            call = (
                ToolCall.objects.dangerously_unscoped()
                .select_for_update(skip_locked=True)
                .select_related("organization")
                .filter(pk=pk, outcome=Outcome.RUNNING)
                .first()
            )
            if call is None:
                continue
            call.outcome = Outcome.FAILED
            call.reason_code = "interrupted"
            call.reason = "the call stopped without an outcome (its worker was lost); whether it took effect is unknown"
            call.finished_at = now
            call.save(update_fields=["outcome", "reason_code", "reason", "finished_at"])
            audit_record(organization=call.organization, actor=None, action="tool.interrupted", target=call,
                         target_label=f"{call.tool_name} #{call.pk}", after={"tool": call.tool_name})
            swept += 1
    return swept
