"""Writes of the gateway's configuration: an organization's LLM settings."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.db import transaction

from accounts.errors import InvalidInput
from accounts.services.audit import audit_record
from agents.llm import conf
from agents.llm.conf import SCRIPTED_DEPLOYMENT, parse_deployment
from agents.models import OrganizationLLMSettings

if TYPE_CHECKING:
    from accounts.models import Organization, User

_UNSET: Any = object()
_DECIMAL_FIELDS = ("daily_budget", "monthly_budget", "task_budget", "onprem_input_cost_per_mtok",
                   "onprem_output_cost_per_mtok")


def _snapshot(row: OrganizationLLMSettings) -> dict[str, Any]:
    return {
        "tier_overrides": row.tier_overrides,
        "deployments": sorted(row.deployments or {}),
        "on_prem_only": row.on_prem_only,
        "hybrid_mode": row.hybrid_mode,
        **{name: None if getattr(row, name) is None else str(getattr(row, name)) for name in _DECIMAL_FIELDS},
        "calls_per_hour_per_user": row.calls_per_hour_per_user,
    }


def _amount(name: str, value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidInput("must be a number", field=name) from exc
    if not amount.is_finite() or amount < 0:
        raise InvalidInput("must be zero or more", field=name)
    return amount


def llm_settings_update(
    *,
    organization: Organization,
    actor: User | None,
    tier_overrides: dict[str, list[str]] | None = _UNSET,
    deployments: dict[str, dict[str, Any]] | None = _UNSET,
    on_prem_only: bool = _UNSET,
    hybrid_mode: bool | None = _UNSET,
    daily_budget: Decimal | None = _UNSET,
    monthly_budget: Decimal | None = _UNSET,
    task_budget: Decimal | None = _UNSET,
    onprem_input_cost_per_mtok: Decimal | None = _UNSET,
    onprem_output_cost_per_mtok: Decimal | None = _UNSET,
    calls_per_hour_per_user: int | None = _UNSET,
) -> OrganizationLLMSettings:
    """Create or change the organization's LLM settings; only the arguments given change."""
    values: dict[str, Any] = {}
    if deployments is not _UNSET:
        deployments = deployments or {}
        if not isinstance(deployments, dict):
            raise InvalidInput("deployments must map a name to a deployment", field="deployments")
        global_names = set(conf.configured_deployments()) | {SCRIPTED_DEPLOYMENT}
        for name, raw in deployments.items():
            if name in global_names:
                raise InvalidInput(f"{name!r} is already a deployment of the platform; choose another name",
                                   field="deployments")
            try:
                parse_deployment(name, raw, origin="organization")
            except ValueError as exc:
                raise InvalidInput(str(exc), field="deployments") from exc
        values["deployments"] = deployments
    current = OrganizationLLMSettings.objects.for_org(organization).first()
    org_deployments = values.get("deployments", current.deployments if current else {})
    known = set(conf.configured_deployments()) | {SCRIPTED_DEPLOYMENT} | set(org_deployments or {})
    if tier_overrides is not _UNSET:
        tier_overrides = tier_overrides or {}
        if not isinstance(tier_overrides, dict):
            raise InvalidInput("tier_overrides must map a tier to a list of deployment names", field="tier_overrides")
        for tier, names in tier_overrides.items():
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise InvalidInput(f"tier {tier!r} needs a list of deployment names", field="tier_overrides")
            unknown = [n for n in names if n not in known]
            if unknown:
                raise InvalidInput(f"tier {tier!r} names unknown deployments: {', '.join(unknown)}",
                                   field="tier_overrides")
        values["tier_overrides"] = tier_overrides
    if on_prem_only is not _UNSET:
        values["on_prem_only"] = bool(on_prem_only)
    if hybrid_mode is not _UNSET:
        values["hybrid_mode"] = hybrid_mode
    for name, value in (("daily_budget", daily_budget), ("monthly_budget", monthly_budget),
                        ("task_budget", task_budget), ("onprem_input_cost_per_mtok", onprem_input_cost_per_mtok),
                        ("onprem_output_cost_per_mtok", onprem_output_cost_per_mtok)):
        if value is not _UNSET:
            values[name] = _amount(name, value)
    if calls_per_hour_per_user is not _UNSET:
        if calls_per_hour_per_user is not None and (
            not isinstance(calls_per_hour_per_user, int) or calls_per_hour_per_user < 1
        ):
            raise InvalidInput("must be a positive whole number", field="calls_per_hour_per_user")
        values["calls_per_hour_per_user"] = calls_per_hour_per_user
    with transaction.atomic():
        row, _ = OrganizationLLMSettings.objects.for_org(organization).select_for_update().get_or_create(
            organization=organization
        )
        before = _snapshot(row)
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_by = actor
        row.save()
        audit_record(organization=organization, actor=actor, action="llm.settings_updated", target=row,
                     before=before, after=_snapshot(row))
    return row
