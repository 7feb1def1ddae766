"""The offline scripted model through the gateway: chosen when no model is configured, and labelled everywhere."""

from __future__ import annotations

import json

import pytest

from agents.llm.gateway import complete
from agents.llm.router import litellm_module
from agents.llm.types import SCRIPTED_LABEL
from agents.models import LLMCall

pytestmark = pytest.mark.django_db

ONBOARD = "Onboard Maria Lopez as QA engineer starting 1 March, reporting to Dana"
TOOLS = [{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
         for name in ("documents_generate", "hris_add_employee", "email_send", "calendar_invite")]


@pytest.fixture(autouse=True)
def _no_models(settings):
    settings.LLM_DEPLOYMENTS = {}
    settings.LLM_TIERS = {}


def ask(tenant, role, text, **kwargs):
    return complete(organization=tenant.organization, user=tenant.member, role=role,
                    messages=[{"role": "user", "content": text}], **kwargs)


def test_with_no_model_configured_the_scripted_model_answers_and_is_labelled(tenant_a):
    """The answer comes from the scripts, and both the result and its record say so."""
    result = ask(tenant_a, "classifier", ONBOARD, purpose="classify")
    assert json.loads(result.content)["intent"] == "complex_task"
    assert (result.scripted, result.deployment, result.locality, result.scenario) == (
        True, "scripted", "scripted", "hr_onboarding")
    assert result.metadata["scripted"] is True
    assert result.metadata["label"] == SCRIPTED_LABEL
    assert result.cost == 0
    call = LLMCall.objects.for_org(tenant_a.organization).get(pk=result.call_id)
    assert (call.scripted, call.scenario, call.model, call.tier, call.purpose) == (
        True, "hr_onboarding", "scripted/staffer", "fast", "classify")
    assert call.tokens_in > 0


def test_the_onboarding_flow_offline_plan_tool_calls_review_summary(tenant_a):
    """Plan, the offer letter's tool call in OpenAI format, a revision, the revised call, acceptance, summary."""
    plan = ask(tenant_a, "manager", ONBOARD, step_key="plan")
    assert json.loads(plan.content)["steps"][0]["id"] == "offer_letter"

    step = [{"role": "user", "content": ONBOARD}]
    first = complete(organization=tenant_a.organization, user=tenant_a.member, role="employee", messages=step,
                     tools=TOOLS, step_key="offer_letter", scenario=plan.scenario)
    assert first.finish_reason == "tool_calls"
    call = first.tool_calls[0]
    assert call.name == "documents_generate"
    assert call.id.startswith("call_")
    assert json.loads(call.raw_arguments) == call.arguments
    assert "manager" not in call.arguments["data"]

    step += [first.assistant_message(),
             {"role": "tool", "tool_call_id": call.id, "content": '{"file": "offer-letter-maria-lopez.docx"}'}]
    done = complete(organization=tenant_a.organization, user=tenant_a.member, role="employee", messages=step,
                    tools=TOOLS, step_key="offer_letter")
    assert done.tool_calls == []
    assert "offer-letter-maria-lopez.docx" in done.content

    verdict = ask(tenant_a, "supervisor", ONBOARD, step_key="offer_letter", attempt=1,
                  response_schema={"type": "object", "required": ["verdict"]})
    assert verdict.parsed["verdict"] == "revise"
    redo = ask(tenant_a, "employee", ONBOARD, step_key="offer_letter", attempt=2, tools=TOOLS)
    assert redo.tool_calls[0].arguments["data"]["manager"] == "Dana"
    assert ask(tenant_a, "supervisor", ONBOARD, step_key="offer_letter", attempt=2).content.count("accept") == 1
    summary = ask(tenant_a, "manager", ONBOARD, step_key="summary")
    assert summary.content.startswith("Maria Lopez is onboarded")


def test_scripted_answers_stream_with_a_time_to_first_token(tenant_a):
    """Streaming works offline too: tokens reach on_token and the record carries a TTFT."""
    pieces: list[str] = []
    result = ask(tenant_a, "assistant", "Remember that our fiscal year starts in April", stream=True,
                 on_token=pieces.append)
    assert len(pieces) > 3
    assert "".join(pieces) == result.content
    assert result.content.startswith("Noted. I will remember:")
    call = LLMCall.objects.for_org(tenant_a.organization).get(pk=result.call_id)
    assert call.streamed is True
    assert call.ttft_ms is not None


def test_scripted_tool_calls_stream_too(tenant_a):
    """A streamed scripted tool call arrives whole, with its JSON arguments."""
    result = ask(tenant_a, "employee", "Prepare the weekly report", step_key="collect", stream=True, tools=TOOLS)
    assert [(c.name, c.arguments["limit"]) for c in result.tool_calls] == [("tasks_list", 200)]


def test_the_scripted_provider_is_a_litellm_custom_provider(tenant_a):
    """LiteLLM itself answers model 'scripted/staffer' (it is registered in litellm.custom_provider_map)."""
    litellm = litellm_module()
    assert any(p["provider"] == "scripted" for p in litellm.custom_provider_map)
    response = litellm.completion(model="scripted/staffer", messages=[{"role": "user", "content": "Hello"}],
                                  metadata={"staffer": {"role": "classifier"}})
    assert json.loads(response.choices[0].message.content)["intent"] == "conversation"
