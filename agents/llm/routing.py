"""Routing policy: which deployments serve a call, in which order.

1. The organization's configuration: the deployments of the settings plus its
   own, its tier overrides; pinned to on-prem, every cloud deployment is removed
   before anything else happens (so no route and no Router of that
   organization can reach one). With no model configured anywhere, the
   scripted model serves every tier.
2. The tier: the caller's, else the role's (Manager → planner, Employee →
   worker, Supervisor → reviewer, classifier and extractor → fast). Each of a
   long input, a complex task type and repeated earlier failures bumps it one
   step (fast → worker → planner, reviewer → planner).
3. The chain: the tier's deployments in their configured order; in hybrid mode
   local ones first, or cloud ones first for critical work. The gateway tries
   them in that order and falls back on an error, a timeout or a failed
   quality check.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agents.llm import conf
from agents.llm.conf import SCRIPTED_DEPLOYMENT, SCRIPTED_SPEC, TIERS, DeploymentSpec, parse_deployment
from agents.llm.errors import InvalidLLMRequest, NoDeploymentAvailable

if TYPE_CHECKING:
    from accounts.models import Organization
    from agents.models import OrganizationLLMSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OrgLLMConfig:
    """What one organization may call, after its overrides and pinning."""

    deployments: dict[str, DeploymentSpec]
    tiers: dict[str, list[str]]
    on_prem_only: bool = False
    hybrid: bool = False
    scripted_only: bool = False
    excluded: tuple[str, ...] = ()  # cloud deployments removed by on-prem pinning

    def chain_for(self, tier: str) -> list[DeploymentSpec]:
        return [self.deployments[name] for name in self.tiers.get(tier, []) if name in self.deployments]


@dataclass(frozen=True)
class Route:
    tier: str
    requested_tier: str
    chain: list[DeploymentSpec]
    reasons: list[str] = field(default_factory=list)


def settings_row(organization: Organization) -> OrganizationLLMSettings | None:
    from agents.models import OrganizationLLMSettings

    return OrganizationLLMSettings.objects.for_org(organization).first()


def org_config(organization: Organization | None, row: OrganizationLLMSettings | None = None, *,
               load_row: bool = True) -> OrgLLMConfig:
    """The effective configuration of ``organization`` (its settings row is read unless given).

    ``None``: the platform's configuration, before any organization's overrides.
    """
    if row is None and load_row and organization is not None:
        row = settings_row(organization)
    deployments = dict(conf.configured_deployments())
    if row is not None:
        for name, raw in (row.deployments or {}).items():
            try:
                deployments[name] = parse_deployment(name, raw, origin="organization")
            except ValueError as exc:  # validated on write; a stale row must not break every call
                logger.warning("organization %s: skipping deployment: %s", row.organization_id, exc)
    scripted_only = not deployments
    if scripted_only:
        deployments = {SCRIPTED_DEPLOYMENT: SCRIPTED_SPEC}
        tiers = {tier: [SCRIPTED_DEPLOYMENT] for tier in TIERS}
    else:
        deployments.setdefault(SCRIPTED_DEPLOYMENT, SCRIPTED_SPEC)  # callable by name, never by default
        configured = conf.configured_tiers()
        every = [name for name in deployments if name != SCRIPTED_DEPLOYMENT]
        tiers = {tier: list(configured.get(tier) or every) for tier in (*TIERS, *configured)}
    if row is not None:
        for tier, names in (row.tier_overrides or {}).items():
            if isinstance(names, list) and names:
                tiers[str(tier)] = [str(n) for n in names]
    on_prem_only = bool(row and row.on_prem_only)
    excluded: list[str] = []
    if on_prem_only:
        excluded = [name for name, spec in deployments.items() if spec.locality == "cloud"]
        deployments = {name: spec for name, spec in deployments.items() if spec.locality != "cloud"}
    tiers = {tier: [n for n in names if n in deployments] for tier, names in tiers.items()}
    hybrid = conf.hybrid_mode() if row is None or row.hybrid_mode is None else bool(row.hybrid_mode)
    return OrgLLMConfig(deployments=deployments, tiers=tiers, on_prem_only=on_prem_only, hybrid=hybrid,
                        scripted_only=scripted_only, excluded=tuple(excluded))


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A cheap estimate (four characters a token) that needs no tokenizer."""
    chars = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(str(part.get("text", ""))) for part in content if isinstance(part, dict))
    return chars // 4


def choose_tier(*, role: str, tier: str | None, messages: list[dict[str, Any]], task_type: str = "",
                prior_failures: int = 0) -> tuple[str, str, list[str]]:
    """``(tier, requested_tier, reasons)``: the role's (or given) tier, bumped by complexity."""
    if tier:
        requested = tier
    else:
        requested = conf.role_tiers().get(role, "")
        if not requested:
            raise InvalidLLMRequest(f"no tier is set for the role {role!r}", field="role")
    reasons: list[str] = []
    tokens = estimate_tokens(messages)
    if tokens >= conf.long_input_tokens():
        reasons.append(f"long input (~{tokens} tokens)")
    if task_type and task_type in conf.complex_task_types():
        reasons.append(f"complex task type {task_type!r}")
    if prior_failures >= conf.escalate_after_failures():
        reasons.append(f"{prior_failures} earlier failures")
    chosen = requested
    escalation = conf.tier_escalation()
    for _ in reasons:
        chosen = escalation.get(chosen, chosen)
    return chosen, requested, reasons


def order_chain(chain: list[DeploymentSpec], *, hybrid: bool, critical: bool) -> list[DeploymentSpec]:
    if not hybrid:
        return list(chain)
    local = [d for d in chain if d.locality != "cloud"]
    cloud = [d for d in chain if d.locality == "cloud"]
    return cloud + local if critical else local + cloud


def resolve_route(config: OrgLLMConfig, *, role: str, messages: list[dict[str, Any]], tier: str | None = None,
                  task_type: str = "", prior_failures: int = 0, critical: bool = False) -> Route:
    """The tier and the ordered deployments for one call; raises when none may serve it."""
    chosen, requested, reasons = choose_tier(role=role, tier=tier, messages=messages, task_type=task_type,
                                             prior_failures=prior_failures)
    if tier and tier not in config.tiers:
        raise InvalidLLMRequest(f"unknown tier {tier!r}; known: {', '.join(sorted(config.tiers))}", field="tier")
    chain = config.chain_for(chosen)
    if not chain and chosen != requested:
        reasons.append(f"tier {chosen!r} has no deployment; using {requested!r}")
        chosen = requested
        chain = config.chain_for(chosen)
    if not chain:
        if config.on_prem_only:
            raise NoDeploymentAvailable(
                f"this organization is pinned to on-prem models and tier {chosen!r} has no on-prem deployment"
            )
        raise NoDeploymentAvailable(f"tier {chosen!r} has no deployment configured")
    if config.hybrid:
        reasons.append("hybrid: cloud first (critical work)" if critical else "hybrid: local first")
    return Route(tier=chosen, requested_tier=requested, chain=order_chain(chain, hybrid=config.hybrid,
                                                                            critical=critical), reasons=reasons)
