"""The decision handler for tool-call approvals (registered in ``ToolsConfig.ready()``).

A tool call that waits on an approval is retried by its caller with the same
idempotency key (the automation engine does so when it resumes the step). This
handler only records the decision on the waiting call; it is idempotent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tools.types import Outcome

if TYPE_CHECKING:
    from accounts.models import ApprovalRequest


def on_tool_call_decided(approval: ApprovalRequest) -> None:
    from accounts.models import ApprovalStatus
    from tools.models import ToolCall

    waiting = ToolCall.objects.for_org(approval.organization).filter(
        approval=approval, outcome=Outcome.NEEDS_APPROVAL, claimed=False
    )
    if approval.status == ApprovalStatus.APPROVED:
        waiting.update(reason=f"approved by a decision on approval #{approval.pk}; invoke again with the same key")
    elif approval.status != ApprovalStatus.PENDING:
        waiting.update(
            outcome=Outcome.REJECTED,
            reason_code=f"approval_{approval.status}",
            reason=approval.decision_reason or f"the approval was {approval.status}",
        )
