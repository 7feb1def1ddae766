"""Routing policy: role tiers, complexity bumps, hybrid order, per-organization overrides and on-prem pinning."""

from __future__ import annotations

import pytest

from accounts.errors import InvalidInput
from agents.llm.errors import AllDeploymentsFailed, InvalidLLMRequest, NoDeploymentAvailable
from agents.llm.gateway import complete
from agents.llm.routing import choose_tier, org_config, resolve_route
from agents.llm.services import llm_settings_update
from agents.models import CallOutcome, LLMCall
from tests.agents.conftest import deployment

pytestmark = pytest.mark.django_db

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def fleet(settings, stub):
    """Two on-prem deployments (vLLM, an own OpenAI-compatible server) and two cloud ones."""
    for name in ("r-vllm", "r-own", "r-cloud-big", "r-cloud-small"):
        stub.heal(name)
        stub.program(name, content=f"answer from {name}")
    settings.LLM_DEPLOYMENTS = {
        "vllm": deployment(stub, "r-vllm", provider="hosted_vllm"),
        "own": deployment(stub, "r-own", local=True),
        "cloud-big": deployment(stub, "r-cloud-big"),
        "cloud-small": deployment(stub, "r-cloud-small"),
    }
    settings.LLM_TIERS = {
        "planner": ["cloud-big", "vllm"],
        "worker": ["cloud-small", "vllm", "own"],
        "reviewer": ["cloud-small", "own"],
        "fast": ["own"],
    }
    return stub


@pytest.mark.parametrize(("role", "tier"), [("manager", "planner"), ("employee", "worker"),
                                            ("supervisor", "reviewer"), ("classifier", "fast"),
                                            ("extractor", "fast")])
def test_roles_map_to_their_tiers(role, tier):
    """Manager → planner, Employee → worker, Supervisor → reviewer, classifier and extractor → fast."""
    assert choose_tier(role=role, tier=None, messages=MESSAGES)[0] == tier


def test_complexity_bumps_the_tier_one_step_per_reason(settings):
    """A long input, a complex task type and repeated failures each move the tier up one step, capped at planner."""
    settings.LLM_LONG_INPUT_TOKENS = 100
    long_input = [{"role": "user", "content": "word " * 200}]
    assert choose_tier(role="classifier", tier=None, messages=long_input)[0] == "worker"
    assert choose_tier(role="classifier", tier=None, messages=MESSAGES, task_type="legal")[0] == "worker"
    assert choose_tier(role="classifier", tier=None, messages=MESSAGES, prior_failures=2)[0] == "worker"
    assert choose_tier(role="classifier", tier=None, messages=MESSAGES, prior_failures=1)[0] == "fast"
    tier, requested, reasons = choose_tier(role="classifier", tier=None, messages=long_input, task_type="legal",
                                           prior_failures=3)
    assert (tier, requested, len(reasons)) == ("planner", "fast", 3)
    assert choose_tier(role="supervisor", tier=None, messages=long_input)[0] == "planner"


def test_hybrid_mode_tries_local_first_and_cloud_first_for_critical_work(fleet, tenant_a):
    """In hybrid mode an ordinary call goes to on-prem first; critical work goes to the cloud first."""
    llm_settings_update(organization=tenant_a.organization, actor=tenant_a.admin, hybrid_mode=True)
    config = org_config(tenant_a.organization)
    ordinary = resolve_route(config, role="employee", messages=MESSAGES)
    critical = resolve_route(config, role="employee", messages=MESSAGES, critical=True)
    assert [d.name for d in ordinary.chain] == ["vllm", "own", "cloud-small"]
    assert [d.name for d in critical.chain] == ["cloud-small", "vllm", "own"]
    result = complete(organization=tenant_a.organization, user=tenant_a.member, role="employee", messages=MESSAGES)
    assert (result.deployment, result.locality) == ("vllm", "local")


def test_hybrid_mode_falls_back_from_failing_local_deployments_to_the_cloud(fleet, stub, tenant_a, fast_retries):
    """In hybrid mode, when every on-prem deployment fails, the cloud one answers and the call is a fallback."""
    llm_settings_update(organization=tenant_a.organization, actor=tenant_a.admin, hybrid_mode=True)
    stub.fail("r-vllm", status=500)
    stub.fail("r-own", status=502)
    try:
        result = complete(organization=tenant_a.organization, user=tenant_a.member, role="employee",
                          messages=MESSAGES)
    finally:
        stub.heal("r-vllm")
        stub.heal("r-own")
    assert (result.deployment, result.outcome) == ("cloud-small", CallOutcome.FALLBACK)
    assert [a["deployment"] for a in result.attempts] == ["vllm", "own"]


def test_without_hybrid_the_configured_order_holds(fleet, tenant_a):
    """Outside hybrid mode the tier's deployments are tried in the order configured."""
    result = complete(organization=tenant_a.organization, user=tenant_a.member, role="employee", messages=MESSAGES)
    assert result.deployment == "cloud-small"


def test_organization_tier_overrides_and_own_deployments(fleet, stub, tenant_a, tenant_b):
    """An organization can add its own deployment and route a tier to it; other organizations are unaffected."""
    stub.program("r-org-own", content="from acme's own server")
    llm_settings_update(
        organization=tenant_a.organization, actor=tenant_a.admin,
        deployments={"acme-gpu": deployment(stub, "r-org-own", provider="hosted_vllm")},
        tier_overrides={"planner": ["acme-gpu", "cloud-big"]},
    )
    a = complete(organization=tenant_a.organization, user=tenant_a.member, role="manager", messages=MESSAGES)
    b = complete(organization=tenant_b.organization, user=tenant_b.member, role="manager", messages=MESSAGES)
    assert (a.deployment, a.content) == ("acme-gpu", "from acme's own server")
    assert b.deployment == "cloud-big"


def test_an_organization_pinned_to_on_prem_never_reaches_a_cloud_deployment(fleet, stub, tenant_a, fast_retries):
    """Pinned to on-prem: routes hold only local deployments, and when they all fail no cloud one is tried."""
    llm_settings_update(organization=tenant_a.organization, actor=tenant_a.admin, on_prem_only=True,
                        hybrid_mode=True)
    config = org_config(tenant_a.organization)
    assert all(spec.locality != "cloud" for spec in config.deployments.values())
    assert set(config.excluded) == {"cloud-big", "cloud-small"}
    cloud_before = len(stub.calls_for("r-cloud-big")) + len(stub.calls_for("r-cloud-small"))
    for role in ("manager", "employee", "supervisor", "classifier"):
        result = complete(organization=tenant_a.organization, user=tenant_a.member, role=role, messages=MESSAGES,
                          critical=True)
        assert result.locality == "local"
    stub.fail("r-vllm", status=500)
    stub.fail("r-own", status=500)
    with pytest.raises(AllDeploymentsFailed):
        complete(organization=tenant_a.organization, user=tenant_a.member, role="employee", messages=MESSAGES,
                 critical=True)
    cloud_after = len(stub.calls_for("r-cloud-big")) + len(stub.calls_for("r-cloud-small"))
    assert cloud_after == cloud_before
    stub.heal("r-vllm")
    stub.heal("r-own")


def test_pinned_organization_with_no_on_prem_deployment_for_a_tier_is_told_so(settings, stub, tenant_a):
    """A pinned organization whose tier has only cloud deployments gets a clear error, recorded, no call made."""
    stub.program("r-only-cloud", content="x")
    settings.LLM_DEPLOYMENTS = {"cloud": deployment(stub, "r-only-cloud")}
    settings.LLM_TIERS = {}
    llm_settings_update(organization=tenant_a.organization, actor=tenant_a.admin, on_prem_only=True)
    before = len(stub.calls_for("r-only-cloud"))
    with pytest.raises(NoDeploymentAvailable, match="pinned to on-prem"):
        complete(organization=tenant_a.organization, user=tenant_a.member, role="employee", messages=MESSAGES)
    assert len(stub.calls_for("r-only-cloud")) == before
    call = LLMCall.objects.for_org(tenant_a.organization).get()
    assert call.outcome == CallOutcome.ERROR
    assert "pinned to on-prem" in call.error


def test_no_model_configured_selects_the_scripted_model_for_every_tier(settings, tenant_a):
    """With no deployment in the settings, every tier is served by the offline scripted model."""
    settings.LLM_DEPLOYMENTS = {}
    config = org_config(tenant_a.organization)
    assert config.scripted_only
    assert config.tiers == {
        "planner": ["scripted"], "worker": ["scripted"], "reviewer": ["scripted"], "fast": ["scripted"]}


def test_with_models_configured_the_scripted_model_is_never_a_silent_default(fleet, tenant_a):
    """Once real deployments exist the scripted model serves only a tier that names it explicitly."""
    config = org_config(tenant_a.organization)
    assert all("scripted" not in names for names in config.tiers.values())
    llm_settings_update(organization=tenant_a.organization, actor=tenant_a.admin,
                        tier_overrides={"fast": ["scripted"]})
    result = complete(organization=tenant_a.organization, user=tenant_a.member, role="classifier",
                      messages=[{"role": "user", "content": "Forget Maria's phone number"}])
    assert result.scripted is True
    assert result.scenario == "memory_forget"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tier_overrides": {"worker": ["nope"]}}, "tier_overrides"),
        ({"tier_overrides": {"worker": "vllm"}}, "tier_overrides"),
        ({"deployments": {"x": {"model": "no-provider"}}}, "deployments"),
        ({"deployments": {"x": {"model": "openai/x", "api_base": "ftp://h"}}}, "deployments"),
        ({"deployments": {"x": {"model": "openai/x", "api_key": "sk-secret"}}}, "deployments"),
        ({"deployments": {"vllm": {"model": "hosted_vllm/y"}}}, "deployments"),
        ({"daily_budget": "-1"}, "daily_budget"),
        ({"monthly_budget": "lots"}, "monthly_budget"),
        ({"calls_per_hour_per_user": 0}, "calls_per_hour_per_user"),
    ],
)
def test_bad_settings_are_refused_with_the_field(fleet, tenant_a, changes, field):
    """Unknown deployments, malformed models or URLs, API keys in the database, negative budgets: refused."""
    with pytest.raises(InvalidInput) as caught:
        llm_settings_update(organization=tenant_a.organization, actor=tenant_a.admin, **changes)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"role": "pilot"}, "role"),
        ({"messages": []}, "messages"),
        ({"messages": [{"content": "no role"}]}, "messages"),
        ({"tools": "lookup"}, "tools"),
        ({"tier": "galaxy-brain"}, "tier"),
        ({"response_schema": {"type": "object", "properties": {"x": {"type": "nonsense"}}}}, "response_schema"),
    ],
)
def test_malformed_requests_are_refused_before_any_call(fleet, stub, tenant_a, kwargs, field):
    """A malformed request to the gateway raises InvalidLLMRequest naming the field; nothing is called."""
    before = len(stub.requests)
    arguments = {"role": "employee", "messages": MESSAGES, **kwargs}
    with pytest.raises(InvalidLLMRequest) as caught:
        complete(organization=tenant_a.organization, user=tenant_a.member, **arguments)
    assert caught.value.field == field
    assert len(stub.requests) == before
