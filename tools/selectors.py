"""Reads of the tools app: which tools a member may use, and what they look like to a model."""

from __future__ import annotations

from typing import Any

from accounts.models import Membership
from tools.models import IntegrationCredential, ToolSetting
from tools.registry import Tool, registry
from tools.services.invocation import tool_enabled, tool_permitted


def tools_available_to(membership: Membership, *, scopes: frozenset[str] | None = None) -> list[Tool]:
    """The tools ``membership`` may use in its organization: enabled and configured there, allowed by role and scope.

    ``scopes`` narrows the role's scopes (an API key's). A model is shown only these.
    """
    held = membership.scopes if scopes is None else membership.scopes & scopes
    organization = membership.organization
    settings = {s.tool_name: s for s in ToolSetting.objects.for_org(organization)}
    providers = set(IntegrationCredential.objects.for_org(organization).values_list("provider", flat=True))
    available = []
    for tool in registry.all():
        setting = settings.get(tool.name)
        if not tool_enabled(tool, setting):
            continue
        if tool.provider and tool.provider not in providers:
            continue
        if tool_permitted(tool, setting, role=membership.role, scopes=held):
            continue
        available.append(tool)
    return available


def tool_specs_for_model(membership: Membership, *, scopes: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Function-calling specs of the tools available to ``membership`` (no credentials, no config)."""
    return [tool.spec() for tool in tools_available_to(membership, scopes=scopes)]


def tool_is_available(membership: Membership, name: str) -> bool:
    return any(tool.name == name for tool in tools_available_to(membership))
