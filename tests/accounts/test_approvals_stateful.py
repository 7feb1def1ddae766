"""A hypothesis state machine over one approval request: any sequence of actions keeps the status machine."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from accounts.errors import Conflict, Forbidden, InvalidInput, NotFound
from accounts.models import ApprovalRequest, ApprovalStatus, AuditEvent
from accounts.services.approvals import (
    ApprovalArgumentsChanged,
    approval_check_arguments,
    approval_decide,
    approval_request_create,
    approvals_sweep,
)

ARGS = {"amount": "250.00", "to": "Supplier"}

def test_approval_status_machine(tenants):
    """Whatever happens (decisions by any role or outsider, tampering, expiry), an approval only moves
    pending -> approved/rejected/expired/voided or approved -> voided, is never decided twice,
    a financial requester never approves their own request, and every change is audited."""
    a, b = tenants
    actors = {
        "owner": a.owner, "admin": a.admin, "manager": a.manager, "member": a.member, "viewer": a.viewer,
        "outsider": b.owner,
    }

    class ApprovalMachine(RuleBasedStateMachine):
        @initialize(financial=st.booleans(), requester=st.sampled_from(["owner", "manager", "member"]))
        def create(self, financial: bool, requester: str) -> None:
            self.now = timezone.now()
            self.requester = requester
            self.approval = approval_request_create(
                organization=a.organization, kind="budget", title="Buy laptops", requested_by=actors[requester],
                arguments=ARGS, financial=financial, cost_estimate="250", currency="EUR",
                expires_at=self.now + timedelta(hours=1), now=self.now,
            )
            self.expected = ApprovalStatus.PENDING
            self.changes = 0

        def _may_decide(self, who: str) -> bool:
            if who in ("member", "viewer", "outsider"):
                return False
            return not (self.approval.financial and who == self.requester)

        @rule(who=st.sampled_from(sorted(actors)), approve=st.booleans(), reason=st.sampled_from(["", "because"]))
        def decide(self, who: str, approve: bool, reason: str) -> None:
            try:
                approval_decide(approval=self.approval, actor=actors[who], approve=approve, reason=reason,
                                now=self.now)
            except InvalidInput:
                assert not approve
                assert not reason
            except NotFound:
                assert who == "outsider"
            except Forbidden:
                assert self.expected == ApprovalStatus.PENDING
                assert not self._may_decide(who)
            except Conflict:
                assert self.expected != ApprovalStatus.PENDING
            else:
                assert self.expected == ApprovalStatus.PENDING
                assert self._may_decide(who)
                self.expected = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
                self.changes += 1

        @rule(same=st.booleans())
        def use_arguments(self, same: bool) -> None:
            offered = dict(ARGS) if same else {**ARGS, "amount": "2500.00"}
            try:
                approval_check_arguments(approval=self.approval, arguments=offered)
            except ApprovalArgumentsChanged:
                assert not same
                if self.expected in (ApprovalStatus.PENDING, ApprovalStatus.APPROVED):
                    self.expected = ApprovalStatus.VOIDED
                    self.changes += 1
            else:
                assert same

        @rule(minutes=st.integers(min_value=1, max_value=90))
        def time_passes(self, minutes: int) -> None:
            self.now += timedelta(minutes=minutes)
            approvals_sweep(now=self.now)
            if self.expected == ApprovalStatus.PENDING and self.now >= self.approval.expires_at:
                self.expected = ApprovalStatus.EXPIRED
                self.changes += 1

        @invariant()
        def matches_model(self) -> None:
            stored = ApprovalRequest.objects.for_org(a.organization).get(pk=self.approval.pk)
            assert stored.status == self.expected
            assert (stored.decided_at is None) == (self.expected == ApprovalStatus.PENDING)
            if stored.status == ApprovalStatus.APPROVED and stored.financial:
                assert stored.decided_by != stored.requested_by
            changes = (
                AuditEvent.objects.for_org(a.organization)
                .filter(target_id=str(stored.pk), target_type="accounts.approvalrequest")
                .exclude(action__in=["approval.requested", "approval.decision_refused"])
                .count()
            )
            assert changes == self.changes

    run_state_machine_as_test(
        ApprovalMachine,
        settings=settings(
            max_examples=40, stateful_step_count=8, deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
