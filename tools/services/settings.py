"""An organization's choices for its tools: on/off, minimum role, approval overrides, config."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from jsonschema import Draft202012Validator

from accounts.errors import InvalidInput, NotFound
from accounts.models import Organization, User
from accounts.roles import Role
from accounts.services.audit import audit_record
from tools.models import InternalDomain, ToolSetting
from tools.registry import ApprovalPolicy, registry

_UNSET: Any = object()
APPROVAL_KEYS = {"always", "below_role", "amount_over", "outside_domains"}


def _validate_approval(tool_name: str, approval: Any) -> dict[str, Any]:
    if not isinstance(approval, dict):
        raise InvalidInput("the approval override is an object", field="approval")
    unknown = sorted(set(approval) - APPROVAL_KEYS)
    if unknown:
        raise InvalidInput(f"unknown approval keys: {', '.join(unknown)}", field="approval")
    if "below_role" in approval and approval["below_role"] is not None:
        try:
            Role.from_name(str(approval["below_role"]))
        except ValueError as exc:
            raise InvalidInput(str(exc), field="approval") from exc
    amount = approval.get("amount_over")
    if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool) or amount < 0):
        raise InvalidInput("amount_over is a whole number of minor units (cents), at least 0", field="approval")
    for flag in ("always", "outside_domains"):
        if flag in approval and not isinstance(approval[flag], bool):
            raise InvalidInput(f"{flag} is true or false", field="approval")
    ApprovalPolicy.from_dict(approval)
    return approval


def tool_setting_update(
    *,
    organization: Organization,
    actor: User,
    tool_name: str,
    enabled: bool = _UNSET,
    min_role: int | None = _UNSET,
    approval: dict[str, Any] = _UNSET,
    config: dict[str, Any] = _UNSET,
) -> ToolSetting:
    """Change how ``tool_name`` behaves in ``organization`` (only the arguments given)."""
    tool = registry.get(tool_name)
    if tool is None:
        raise NotFound("Not found.")
    if approval is not _UNSET:
        approval = _validate_approval(tool_name, approval)
    if config is not _UNSET:
        if not isinstance(config, dict):
            raise InvalidInput("config is an object", field="config")
        if config and tool.config_schema is None:
            raise InvalidInput(f"{tool_name} takes no configuration", field="config")
        if tool.config_schema is not None:
            errors = sorted(Draft202012Validator(tool.config_schema).iter_errors(config), key=str)
            if errors:
                raise InvalidInput(f"config: {errors[0].message}", field="config")
    if min_role is not _UNSET and min_role is not None and min_role not in Role.values:
        raise InvalidInput("unknown role", field="min_role")
    with transaction.atomic():
        setting, created = ToolSetting.objects.for_org(organization).select_for_update().get_or_create(
            organization=organization, tool_name=tool_name, defaults={"enabled": tool.enabled_by_default}
        )
        before = None if created else _snapshot(setting)
        if enabled is not _UNSET:
            setting.enabled = bool(enabled)
        if min_role is not _UNSET:
            setting.min_role = min_role
        if approval is not _UNSET:
            setting.approval = approval
        if config is not _UNSET:
            setting.config = config
        setting.updated_by = actor
        setting.save()
        audit_record(organization=organization, actor=actor, action="tool.setting_changed", target=setting,
                     before=before, after=_snapshot(setting))
    return setting


def _snapshot(setting: ToolSetting) -> dict[str, Any]:
    return {
        "tool": setting.tool_name,
        "enabled": setting.enabled,
        "min_role": Role(setting.min_role).slug if setting.min_role else None,
        "approval": setting.approval,
        "config": setting.config,
    }


def internal_domain_add(*, organization: Organization, actor: User, domain: str) -> InternalDomain:
    domain = (domain or "").strip().lower().rstrip(".")
    if not domain or "." not in domain or "@" in domain or len(domain) > 253 or " " in domain:
        raise InvalidInput("give a domain such as example.com", field="domain")
    with transaction.atomic():
        found, created = InternalDomain.objects.for_org(organization).get_or_create(
            organization=organization, domain=domain
        )
        if created:
            audit_record(organization=organization, actor=actor, action="tool.internal_domain_added", target=found)
    return found


def internal_domain_remove(*, domain: InternalDomain, actor: User) -> None:
    with transaction.atomic():
        audit_record(organization=domain.organization, actor=actor, action="tool.internal_domain_removed",
                     target=domain)
        domain.delete()
