"""Concurrent invocations: one effect per idempotency key, and budgets that two racing payments cannot overrun."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from accounts.services.approvals import approval_decide
from tools.registry import Tool, registry
from tools.services.budgets import payment_budget_set
from tools.services.invocation import invoke_tool
from tools.types import Money, Outcome, SideEffect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _race(calls):
    """Run each callable in its own thread at the same moment; return their results."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, fn):
        try:
            barrier.wait()
            results[index] = fn()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_same_key_at_the_same_time_acts_once(tenant_a):
    """Two simultaneous calls with one key: one runs, the other is told it is in progress (or replays)."""
    effects = []

    def slow_write(ctx, args):
        effects.append(args["name"])
        time.sleep(0.5)
        return {"ok": True}

    registry.register(Tool(name="t_slow_write", description="x", parameters={"type": "object"},
                           handler=slow_write, side_effect=SideEffect.WRITE), replace=True)
    try:
        call = lambda: invoke_tool(organization=tenant_a.organization, actor=tenant_a.member,  # noqa: E731
                                   tool_name="t_slow_write", arguments={"name": "x"}, idempotency_key="race")
        results = _race([call, call, call])
    finally:
        registry.unregister("t_slow_write")
    assert effects == ["x"]
    outcomes = sorted(r.outcome for r in results)
    assert outcomes.count(Outcome.SUCCEEDED) >= 1
    assert set(outcomes) <= {Outcome.SUCCEEDED, Outcome.RUNNING}


def test_racing_payments_cannot_overrun_the_budget(tenant_a):
    """Two approved payments that each fit but together exceed the daily budget: exactly one is made."""
    paid = []

    def pay(ctx, args):
        paid.append(args["amount"])
        return {"paid": args["amount"]}

    registry.register(Tool(name="t_race_pay", description="x",
                           parameters={"type": "object", "properties": {"amount": {"type": "integer"}}},
                           handler=pay, side_effect=SideEffect.FINANCIAL,
                           amount=lambda a: Money(a["amount"], "USD")), replace=True)
    try:
        payment_budget_set(organization=tenant_a.organization, actor=tenant_a.owner, currency="USD",
                           per_action_limit=None, daily_limit=10_000, monthly_limit=None)
        approvals = []
        for key in ("p1", "p2"):
            asked = invoke_tool(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="t_race_pay",
                                arguments={"amount": 6_000}, idempotency_key=key)
            approval_decide(approval=asked.approval, actor=tenant_a.owner, approve=True)
            approvals.append(asked.approval)

        def make(key):
            return lambda: invoke_tool(organization=tenant_a.organization, actor=tenant_a.admin,
                                       tool_name="t_race_pay", arguments={"amount": 6_000}, idempotency_key=key)

        results = _race([make("p1"), make("p2")])
    finally:
        registry.unregister("t_race_pay")
    assert paid == [6_000]
    assert sorted(r.outcome for r in results) == sorted([Outcome.SUCCEEDED, Outcome.REFUSED])
    assert next(r for r in results if r.outcome == Outcome.REFUSED).code == "over_budget"
