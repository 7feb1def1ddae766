"""The llm_routes command: routes per tier and role, per organization, and a health check of each deployment."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.llm.services import llm_settings_update
from tests.agents.conftest import deployment

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("llm_routes", *args, stdout=out)
    return out.getvalue()


def test_with_no_model_it_says_the_scripted_model_answers_and_checks_it(settings):
    """No deployment configured: the scripted model is listed for every tier and is healthy."""
    settings.LLM_DEPLOYMENTS = {}
    out = run()
    assert "the offline scripted model answers every tier" in out
    assert "planner   → scripted" in out
    assert "manager    → planner" in out
    assert "scripted" in out.split("Health")[1]
    assert "ok" in out.split("Health")[1]


def test_health_reports_ok_and_fail_with_latency(settings, stub):
    """A healthy deployment is ok, a failing one FAIL with its error, and the command exits non-zero."""
    stub.program("h-up", content="pong")
    stub.fail("h-down", status=500)
    stub.program("h-hung", delay=3.0)
    settings.LLM_DEPLOYMENTS = {"up": deployment(stub, "h-up"),
                                "down": deployment(stub, "h-down", provider="hosted_vllm"),
                                "hung": deployment(stub, "h-hung")}
    settings.LLM_TIERS = {"worker": ["up", "down", "hung"]}
    out = StringIO()
    with pytest.raises(CommandError, match="2 of 3 deployments failed: down, hung"):
        call_command("llm_routes", "--timeout", "0.5", stdout=out)
    health = out.getvalue().split("Health")[1]
    lines = {line.split()[0]: line for line in health.strip().splitlines()[1:]}
    assert "ok" in lines["up"]
    assert "ms" in lines["up"]
    assert "FAIL" in lines["down"]
    assert "500" in lines["down"]
    assert "FAIL" in lines["hung"]
    assert "Timeout" in lines["hung"]
    assert len(stub.calls_for("h-down")) >= 1
    assert stub.calls_for("h-up")[-1].body["max_tokens"] == 1


def test_per_organization_routes_show_overrides_and_pinning(settings, stub, tenant_a):
    """--org shows the organization's own deployments, its tier overrides and what on-prem pinning removed."""
    settings.LLM_DEPLOYMENTS = {"cloud": deployment(stub, "h-cloud"), "gpu": deployment(stub, "h-gpu",
                                                                                       provider="hosted_vllm")}
    settings.LLM_TIERS = {"planner": ["cloud", "gpu"]}
    llm_settings_update(organization=tenant_a.organization, actor=tenant_a.admin, on_prem_only=True,
                        deployments={"acme-box": deployment(stub, "h-acme", provider="ollama_chat")},
                        tier_overrides={"fast": ["acme-box"]})
    out = run("--org", tenant_a.slug, "--no-check")
    assert "Organization: Acme Corp (acme)" in out
    assert "On-prem only: yes" in out
    assert "Excluded by on-prem pinning: cloud" in out
    assert "planner   → gpu" in out
    assert "fast      → acme-box" in out
    assert "[organization]" in out
    assert "Health" not in out


def test_an_unknown_organization_is_an_error():
    """--org with an unknown slug fails with a clear message."""
    with pytest.raises(CommandError, match="no organization with the slug 'nope'"):
        run("--org", "nope")
