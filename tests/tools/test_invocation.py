"""The invocation pipeline: validation, authorization, records, idempotency, failures, timeouts."""

from __future__ import annotations

import time

import pytest

from accounts.models import AuditEvent
from accounts.roles import Role
from tools.errors import ToolRefused
from tools.models import ToolCall
from tools.registry import Tool, registry
from tools.selectors import tool_specs_for_model, tools_available_to
from tools.services.invocation import invoke_tool
from tools.services.settings import tool_setting_update
from tools.types import InvocationContext, Outcome, SideEffect

pytestmark = pytest.mark.django_db


def _membership(tenant, role):
    from accounts.models import Membership

    return Membership.objects.for_org(tenant.organization).get(user=tenant.users[role])


def _calls(tenant):
    return ToolCall.objects.for_org(tenant.organization)


def test_success_is_recorded_with_secrets_redacted(tenant_a, fake_tools):
    """A successful call stores redacted arguments, the result, the duration and an audit event."""
    result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_echo",
                         arguments={"text": "hello", "token": "sk_live_supersecret"}, idempotency_key="k1")
    assert result.ok, result
    assert result.result == {"echo": "hello"}
    call = _calls(tenant_a).get(pk=result.tool_call.pk)
    assert call.outcome == Outcome.SUCCEEDED
    assert call.claimed
    assert call.arguments == {"text": "hello", "token": "[redacted]"}
    assert "supersecret" not in str(call.arguments) + str(call.result)
    assert call.duration_ms is not None
    assert call.finished_at is not None
    event = AuditEvent.objects.for_org(tenant_a.organization).get(action="tool.succeeded", target_id=str(call.pk))
    assert event.after["tool"] == "t_echo"
    assert "supersecret" not in str(event.after)


def test_unknown_tool_refused_and_recorded(tenant_a, fake_tools):
    """An unknown tool is refused with a reason, recorded, and audited."""
    result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.owner, tool_name="t_nope", arguments={})
    assert result.outcome == Outcome.REFUSED
    assert result.code == "unknown_tool"
    assert _calls(tenant_a).filter(tool_name="t_nope", outcome=Outcome.REFUSED).exists()
    assert AuditEvent.objects.for_org(tenant_a.organization).filter(action="tool.refused").exists()


def test_disabled_tool_refused_without_effect(tenant_a, fake_tools, journal):
    """A tool turned off in the organization does not run."""
    tool_setting_update(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="t_write", enabled=False)
    result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.owner, tool_name="t_write",
                         arguments={"name": "x"})
    assert result.code == "tool_disabled"
    assert journal.effects == []


def test_viewer_cannot_use_a_write_tool(tenant_a, fake_tools, journal):
    """A viewer lacks tools:use: the write tool is refused as forbidden."""
    result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.viewer, tool_name="t_write",
                         arguments={"name": "x"})
    assert result.outcome == Outcome.REFUSED
    assert result.code == "forbidden"
    assert "tools:use" in result.reason
    assert journal.effects == []


def test_api_key_scopes_narrow_the_role(tenant_a, fake_tools, journal):
    """An owner acting through a key without tools:use cannot write."""
    result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.owner, tool_name="t_write",
                         arguments={"name": "x"}, context=InvocationContext(scopes=frozenset({"tools:read"})))
    assert result.code == "forbidden"
    assert journal.effects == []


def test_min_role_restriction(tenant_a, fake_tools):
    """An organization can limit a tool to managers and above."""
    tool_setting_update(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="t_write",
                        min_role=Role.MANAGER)
    refused = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_write",
                          arguments={"name": "x"})
    assert refused.code == "forbidden"
    assert invoke_tool(organization=tenant_a.organization, actor=tenant_a.manager, tool_name="t_write",
                       arguments={"name": "x"}).ok


def test_member_of_other_org_refused(tenants, fake_tools, journal):
    """A user of another organization cannot use this organization's tools."""
    a, b = tenants
    result = invoke_tool(organization=a.organization, actor=b.owner, tool_name="t_write", arguments={"name": "x"})
    assert result.code == "forbidden"
    assert journal.effects == []


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({}, "text"),
        ({"text": 5}, "text"),
        ({"text": "x" * 101}, "text"),
        ({"text": "ok", "extra": 1}, "arguments"),
        ("not an object", "arguments"),
    ],
)
def test_schema_invalid_arguments_refused_with_field_errors(tenant_a, fake_tools, arguments, field):
    """Arguments that do not match the schema are refused with a message for the field."""
    result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_echo",
                         arguments=arguments)
    assert result.outcome == Outcome.REFUSED
    assert result.code == "invalid_arguments"
    assert field in result.errors, result.errors
    assert _calls(tenant_a).get(pk=result.tool_call.pk).result == {"errors": result.errors}


def test_idempotent_retry_runs_once(tenant_a, fake_tools, journal):
    """The same call retried with the same key has one effect and returns the stored result."""
    first = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_write",
                        arguments={"name": "a"}, idempotency_key="once")
    second = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_write",
                         arguments={"name": "a"}, idempotency_key="once")
    assert first.ok
    assert second.ok
    assert second.replayed
    assert second.tool_call.pk == first.tool_call.pk
    assert len(journal.effects) == 1
    assert _calls(tenant_a).filter(claimed=True).count() == 1


def test_same_key_other_arguments_is_a_conflict(tenant_a, fake_tools, journal):
    """A key reused for different arguments is refused, not run."""
    invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_write",
                arguments={"name": "a"}, idempotency_key="k")
    other = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_write",
                        arguments={"name": "b"}, idempotency_key="k")
    assert other.code == "idempotency_conflict"
    assert len(journal.effects) == 1


def test_keys_are_per_organization(tenants, fake_tools, journal):
    """The same key in two organizations names two different calls."""
    a, b = tenants
    assert invoke_tool(organization=a.organization, actor=a.member, tool_name="t_write", arguments={"name": "a"},
                       idempotency_key="shared").ok
    again = invoke_tool(organization=b.organization, actor=b.member, tool_name="t_write", arguments={"name": "a"},
                        idempotency_key="shared")
    assert again.ok
    assert not again.replayed
    assert len(journal.effects) == 2


def test_failure_is_recorded_and_not_retried_blindly(tenant_a, fake_tools, journal):
    """A failed call keeps its reason; a retry with the same key returns the failure, not a second attempt."""
    journal.fail_next = True
    failed = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_write",
                         arguments={"name": "a"}, idempotency_key="f")
    assert failed.outcome == Outcome.FAILED
    assert failed.reason == "the backend said no"
    retry = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_write",
                        arguments={"name": "a"}, idempotency_key="f")
    assert retry.replayed
    assert retry.outcome == Outcome.FAILED
    assert journal.effects == []
    fresh = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_write",
                        arguments={"name": "a"}, idempotency_key="f2")
    assert fresh.ok


def test_handler_refusal_releases_the_key(tenant_a, journal):
    """A handler that refuses before acting leaves the key free for a corrected retry."""
    state = {"refuse": True}

    def handler(ctx, args):
        if state["refuse"]:
            raise ToolRefused("not now", code="nope")
        return {"ok": True}

    registry.register(Tool(name="t_refuser", description="x", parameters={"type": "object"}, handler=handler),
                      replace=True)
    try:
        first = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_refuser",
                            arguments={}, idempotency_key="r")
        assert first.outcome == Outcome.REFUSED
        assert first.code == "nope"
        state["refuse"] = False
        second = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_refuser",
                             arguments={}, idempotency_key="r")
        assert second.ok
        assert not second.replayed
    finally:
        registry.unregister("t_refuser")


def test_timeout_stops_a_runaway_handler(tenant_a):
    """A handler past its timeout is interrupted and recorded as timed out."""

    def slow(ctx, args):
        time.sleep(5)
        return {"late": True}

    registry.register(Tool(name="t_slow", description="x", parameters={"type": "object"}, handler=slow,
                           timeout=0.3), replace=True)
    try:
        started = time.monotonic()
        result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_slow",
                             arguments={})
        assert time.monotonic() - started < 2
        assert result.outcome == Outcome.TIMED_OUT
        assert "0.3 s" in result.reason
    finally:
        registry.unregister("t_slow")


def test_unexpected_exception_recorded_without_secret(tenant_a):
    """A crash is recorded as failed with its type; a credential read by the handler is scrubbed."""

    def crash(ctx, args):
        ctx.secrets.add("hunter2-secret-value")
        raise RuntimeError("upstream rejected hunter2-secret-value")

    registry.register(Tool(name="t_crash", description="x", parameters={"type": "object"}, handler=crash),
                      replace=True)
    try:
        result = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_crash",
                             arguments={})
        assert result.outcome == Outcome.FAILED
        assert result.code == "error"
        assert "RuntimeError" in result.reason
        assert "hunter2" not in result.reason
    finally:
        registry.unregister("t_crash")


def test_tools_available_follow_role_and_settings(tenant_a, fake_tools):
    """A viewer sees read tools only; a member no financial tool; a disabled tool is hidden from all."""
    names = {r: {t.name for t in tools_available_to(_membership(tenant_a, r))} for r in Role}
    assert "t_echo" in names[Role.VIEWER]
    assert "t_write" not in names[Role.VIEWER]
    assert "t_write" in names[Role.MEMBER]
    assert "t_pay" not in names[Role.MEMBER]
    assert "t_pay" not in names[Role.MANAGER]
    assert "t_pay" in names[Role.ADMIN]
    assert "t_pay" in names[Role.OWNER]
    tool_setting_update(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="t_echo", enabled=False)
    assert "t_echo" not in {t.name for t in tools_available_to(_membership(tenant_a, Role.OWNER))}


def test_model_specs_carry_no_configuration(tenant_a, fake_tools):
    """What a model is shown is name, description and parameters only."""
    tool_setting_update(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="t_write",
                        approval={"always": True})
    specs = tool_specs_for_model(_membership(tenant_a, Role.MEMBER))
    spec = next(s for s in specs if s["function"]["name"] == "t_write")
    assert set(spec["function"]) == {"name", "description", "parameters"}


def test_registry_refuses_a_second_tool_with_the_same_name(fake_tools):
    """Two different tools cannot share a name (a later app cannot shadow a built-in)."""
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        registry.register(Tool(name="t_echo", description="other", parameters={"type": "object"},
                               handler=lambda c, a: {}, side_effect=SideEffect.WRITE))


def test_registry_refuses_a_bad_schema():
    """A tool whose parameter schema is not valid JSON schema is refused at registration."""
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        Tool(name="t_bad", description="x", parameters={"type": "object", "properties": {"a": {"type": "nope"}}},
             handler=lambda c, a: {})


def test_sweep_fails_calls_whose_worker_died(tenant_a, fake_tools, journal):
    """A call left running past its timeout is marked interrupted; a retry replays that, not a second effect."""
    from datetime import timedelta

    from django.utils import timezone

    from tools.services.sweep import tool_calls_sweep_stale

    first = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_write",
                        arguments={"name": "a"}, idempotency_key="lost")
    stuck = _calls(tenant_a).filter(pk=first.tool_call.pk)
    stuck.update(outcome=Outcome.RUNNING, started_at=timezone.now() - timedelta(minutes=10))
    fresh = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_write",
                        arguments={"name": "b"}, idempotency_key="fresh")
    _calls(tenant_a).filter(pk=fresh.tool_call.pk).update(outcome=Outcome.RUNNING, started_at=timezone.now())
    assert tool_calls_sweep_stale() == 1
    assert stuck.get().reason_code == "interrupted"
    retry = invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="t_write",
                        arguments={"name": "a"}, idempotency_key="lost")
    assert retry.replayed
    assert retry.outcome == Outcome.FAILED
    assert len(journal.effects) == 2
