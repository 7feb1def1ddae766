"""Approval policy: whether an invocation waits for a person, and why."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from accounts.models import Membership, Organization
from accounts.roles import Role
from tools.models import InternalDomain, ToolSetting
from tools.registry import ApprovalPolicy, Tool
from tools.types import Money

# Addresses at these providers belong to people, not to the organization.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "yahoo.com", "icloud.com",
        "me.com", "aol.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de", "web.de", "mail.com",
        "yandex.com", "zoho.com", "fastmail.com",
    }
)


def effective_policy(tool: Tool, setting: ToolSetting | None) -> ApprovalPolicy:
    """The tool's policy with the organization's overrides applied."""
    if setting is None or not setting.approval:
        return tool.approval
    return ApprovalPolicy.from_dict(setting.approval, base=tool.approval)


def internal_domains(organization: Organization) -> frozenset[str]:
    """The organization's own email domains (listed, or else its members' non-public ones)."""
    listed = InternalDomain.objects.for_org(organization).values_list("domain", flat=True)
    domains = {d.lower() for d in listed}
    if domains:
        return frozenset(domains)
    emails = Membership.objects.for_org(organization).values_list("user__email", flat=True)
    found = {e.rsplit("@", 1)[-1].lower() for e in emails if "@" in e}
    return frozenset(found - PUBLIC_MAIL_DOMAINS)


def outside_recipients(addresses: Iterable[str], domains: frozenset[str]) -> list[str]:
    """The addresses whose domain is not one of ``domains`` (subdomains count as inside)."""
    outside = []
    for address in addresses:
        domain = address.rsplit("@", 1)[-1].strip().lower().rstrip(".>")
        if not any(domain == d or domain.endswith("." + d) for d in domains):
            outside.append(address)
    return outside


def approval_reasons(
    *,
    tool: Tool,
    setting: ToolSetting | None,
    role: int,
    arguments: dict[str, Any],
    money: Money | None,
    organization: Organization,
) -> list[str]:
    """Every reason this invocation needs approval; empty when it does not."""
    policy = effective_policy(tool, setting)
    reasons: list[str] = []
    if tool.financial:
        reasons.append("it moves money")
    if policy.always:
        reasons.append("this tool always asks")
    if policy.below_role is not None and role < policy.below_role:
        reasons.append(f"your role ({Role(role).label}) is below {Role(policy.below_role).label}")
    if policy.amount_over is not None and money is not None and money.amount > policy.amount_over:
        reasons.append(f"the amount {money.amount} {money.currency} is over {policy.amount_over}")
    if policy.outside_domains and tool.recipients is not None:
        outside = outside_recipients(tool.recipients(arguments), internal_domains(organization))
        if outside:
            shown = ", ".join(outside[:5]) + (" …" if len(outside) > 5 else "")
            reasons.append(f"it reaches outside the organization ({shown})")
    return reasons
