"""The real HTTP path: LiteLLM against a local OpenAI-compatible server (openai/ and hosted_vllm/ providers)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from agents.llm.errors import AllDeploymentsFailed
from agents.llm.gateway import complete
from agents.llm.router import litellm_module, router_for
from agents.llm.routing import org_config
from agents.models import CallOutcome, LLMCall
from tests.agents.conftest import deployment

pytestmark = pytest.mark.django_db

TOOLS = [{"type": "function", "function": {
    "name": "lookup_employee", "description": "Find an employee",
    "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}]


def ask(tenant, **kwargs):
    kwargs.setdefault("messages", [{"role": "user", "content": "Say hello to the team"}])
    kwargs.setdefault("role", "employee")
    return complete(organization=tenant.organization, user=tenant.member, **kwargs)


def configure(settings, deployments: dict, tiers: dict | None = None) -> None:
    settings.LLM_DEPLOYMENTS = deployments
    settings.LLM_TIERS = tiers or {"worker": list(deployments)}


@pytest.mark.parametrize(("provider", "locality"), [("openai", "cloud"), ("hosted_vllm", "local")])
def test_plain_completion_is_recorded(settings, stub, tenant_a, provider, locality):
    """A plain answer comes back through LiteLLM and the call is recorded with tokens, latency and outcome."""
    name = f"plain-{provider}"
    stub.program(name, content="Hello team, have a great week")
    configure(settings, {"main": deployment(stub, name, provider=provider)})
    result = ask(tenant_a)
    assert result.content == "Hello team, have a great week"
    assert (result.deployment, result.model, result.outcome) == ("main", f"{provider}/{name}", CallOutcome.OK)
    assert result.scripted is False
    call = LLMCall.objects.for_org(tenant_a.organization).get(pk=result.call_id)
    assert (call.user, call.role, call.tier, call.locality) == (tenant_a.member, "employee", "worker", locality)
    assert call.tokens_in > 0
    assert call.tokens_out == 6
    assert call.ttft_ms is None
    assert call.latency_ms >= 0
    body = stub.calls_for(name)[-1].body
    assert "metadata" not in body  # the gateway's hints never reach a provider


def test_streaming_delivers_tokens_as_they_arrive_and_records_time_to_first_token(settings, stub, tenant_a):
    """Streamed text reaches on_token chunk by chunk before the call returns; TTFT is recorded below latency."""
    stub.program("drip", content="one two three four five six", chunk_delay=0.08)
    configure(settings, {"drip": deployment(stub, "drip", provider="hosted_vllm")})
    arrivals: list[tuple[float, str]] = []
    result = ask(tenant_a, stream=True, on_token=lambda text: arrivals.append((time.monotonic(), text)))
    assert "".join(text for _, text in arrivals) == "one two three four five six"
    assert result.content == "one two three four five six"
    assert len(arrivals) == 6
    assert arrivals[-1][0] - arrivals[0][0] >= 0.3  # incremental, not delivered at once at the end
    call = LLMCall.objects.for_org(tenant_a.organization).get(pk=result.call_id)
    assert call.streamed is True
    assert call.ttft_ms is not None
    assert 0 < call.ttft_ms < call.latency_ms
    assert call.latency_ms - call.ttft_ms >= 300
    assert call.tokens_out == 6  # usage from the stream's final chunk


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("provider", ["openai", "hosted_vllm"])
def test_tool_calls_are_parsed(settings, stub, tenant_a, stream, provider):
    """A tool call (plain or streamed in pieces) comes back with its name and JSON arguments parsed."""
    name = f"tools-{provider}"
    stub.program(name, tool_calls=[("lookup_employee", {"name": "Maria Lopez"})])
    configure(settings, {"t": deployment(stub, name, provider=provider)})
    result = ask(tenant_a, tools=TOOLS, stream=stream)
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("lookup_employee", {"name": "Maria Lopez"})]
    assert result.finish_reason == "tool_calls"
    assert result.assistant_message()["tool_calls"][0]["function"]["name"] == "lookup_employee"
    assert stub.calls_for(name)[-1].body["tools"][0]["function"]["name"] == "lookup_employee"


def test_fallback_from_a_failing_deployment(settings, stub, tenant_a, fast_retries):
    """A deployment answering HTTP 500 is skipped for the next one; the call is recorded as a fallback."""
    stub.fail("broken-500", status=500)
    stub.program("healthy-a", content="from the healthy one")
    configure(settings, {"broken": deployment(stub, "broken-500", provider="hosted_vllm"),
                         "healthy": deployment(stub, "healthy-a")})
    before = len(stub.calls_for("broken-500"))
    result = ask(tenant_a)
    assert (result.content, result.deployment, result.outcome) == ("from the healthy one", "healthy",
                                                                   CallOutcome.FALLBACK)
    assert len(stub.calls_for("broken-500")) > before
    call = LLMCall.objects.for_org(tenant_a.organization).get(pk=result.call_id)
    assert call.outcome == CallOutcome.FALLBACK
    assert call.deployment == "healthy"
    assert [(a["deployment"], a["kind"]) for a in call.attempts] == [("broken", "error")]
    assert "500" in call.attempts[0]["error"]


def test_fallback_from_a_timing_out_deployment(settings, stub, tenant_a):
    """A deployment slower than its timeout is abandoned (not retried) for the next one."""
    stub.program("hung", delay=5.0)
    stub.program("healthy-b", content="quick answer")
    configure(settings, {"hung": deployment(stub, "hung", timeout=0.5), "healthy": deployment(stub, "healthy-b")})
    started = time.monotonic()
    result = ask(tenant_a, stream=True)
    assert time.monotonic() - started < 4
    assert (result.content, result.outcome) == ("quick answer", CallOutcome.FALLBACK)
    assert result.attempts[0]["kind"] == "timeout"
    assert result.ttft_ms is not None
    assert result.ttft_ms >= 500  # measured from the start of the call, the lost half second included
    assert len(stub.calls_for("hung")) == 1


def test_a_transient_500_is_retried_on_the_same_deployment(settings, stub, tenant_a):
    """With the default retry policy one HTTP 500 is retried once on the same deployment: no fallback."""
    stub.fail("flaky", status=500, times=1)
    stub.program("flaky", content="second time lucky")
    stub.program("spare", content="spare")
    configure(settings, {"flaky": deployment(stub, "flaky"), "spare": deployment(stub, "spare")})
    result = ask(tenant_a)
    assert (result.content, result.deployment, result.outcome) == ("second time lucky", "flaky", CallOutcome.OK)
    assert len(stub.calls_for("flaky")) == 2
    assert stub.calls_for("spare") == []


def test_every_deployment_failing_ends_with_a_clear_error(settings, stub, tenant_a, fast_retries):
    """When all deployments fail the caller gets one error naming each, and the call is recorded as an error."""
    stub.fail("down-1", status=500)
    stub.fail("down-2", status=503)
    configure(settings, {"first": deployment(stub, "down-1"), "second": deployment(stub, "down-2")})
    with pytest.raises(AllDeploymentsFailed) as caught:
        ask(tenant_a)
    assert "first" in caught.value.message
    assert "second" in caught.value.message
    call = LLMCall.objects.for_org(tenant_a.organization).get(pk=caught.value.call_id)
    assert call.outcome == CallOutcome.ERROR
    assert call.deployment == ""
    assert len(call.attempts) == 2
    assert "first" in call.error


def test_a_tier_group_with_a_failing_member_answers_ten_times_out_of_ten(settings, stub, tenant_a):
    """router.completion(model=<tier>) over a failing and a healthy deployment succeeds 10 of 10 times."""
    stub.fail("group-bad", status=500)
    stub.program("group-good", content="ok")
    configure(settings, {"bad": deployment(stub, "group-bad"), "good": deployment(stub, "group-good")},
              {"worker": ["bad", "good"]})
    config = org_config(tenant_a.organization)
    router = router_for(list(config.deployments.values()), config.tiers)
    answers = [router.completion(model="worker", messages=[{"role": "user", "content": "hi"}])
               for _ in range(10)]
    assert [a.choices[0].message.content for a in answers] == ["ok"] * 10


def test_cost_comes_from_the_bundled_price_map(settings, stub, tenant_a):
    """A model LiteLLM knows (gpt-4o-mini) is priced offline from its bundled map."""
    stub.program("gpt-4o-mini", content="priced answer here")
    configure(settings, {"mini": deployment(stub, "gpt-4o-mini")})
    result = ask(tenant_a)
    prices = litellm_module().model_cost["gpt-4o-mini"]
    expected = (Decimal(str(prices["input_cost_per_token"])) * result.usage.input_tokens
                + Decimal(str(prices["output_cost_per_token"])) * result.usage.output_tokens)
    assert result.cost > 0
    assert abs(result.cost - expected) < Decimal("0.00000001")
    call = LLMCall.objects.for_org(tenant_a.organization).get(pk=result.call_id)
    assert call.cost == result.cost.quantize(Decimal("0.00000001"))


def test_a_stream_cut_mid_answer_is_an_error_not_a_silent_truncation(settings, stub, tenant_a):
    """The connection lost after two chunks: no truncated answer is accepted, and with text already shown
    (and no on_reset) the gateway does not start another answer after it."""
    stub.program("cut-off", content="one two three four five", cut_after=2)
    stub.program("backup-c", content="complete answer")
    configure(settings, {"cut": deployment(stub, "cut-off", provider="hosted_vllm"),
                         "backup": deployment(stub, "backup-c")})
    shown: list[str] = []
    with pytest.raises(AllDeploymentsFailed, match="already streamed") as caught:
        ask(tenant_a, stream=True, on_token=shown.append)
    assert "".join(shown) == "one two"
    assert stub.calls_for("backup-c") == []
    call = LLMCall.objects.for_org(tenant_a.organization).get(pk=caught.value.call_id)
    assert call.outcome == CallOutcome.ERROR
    assert "after 2 streamed chunks" in call.attempts[0]["error"]


def test_with_on_reset_a_cut_stream_falls_back_and_the_consumer_is_told_to_clear(settings, stub, tenant_a):
    """Given on_reset, the consumer clears the partial text and receives the next deployment's whole answer."""
    stub.program("cut-off-2", content="one two three four five", cut_after=2)
    stub.program("backup-d", content="complete answer")
    configure(settings, {"cut": deployment(stub, "cut-off-2"), "backup": deployment(stub, "backup-d")})
    shown: list[str] = []
    result = ask(tenant_a, stream=True, on_token=shown.append, on_reset=shown.clear)
    assert "".join(shown) == "complete answer" == result.content
    assert result.outcome == CallOutcome.FALLBACK
