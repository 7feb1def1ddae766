"""Rows of the tools app for the cross-organization route walker (tests/tenancy)."""

from __future__ import annotations

from tests.tenancy.registry import register, register_payload, register_url_kwarg
from tools.models import IntegrationCredential, InternalDomain, PaymentBudget, PaymentTransaction, ToolCall, ToolSetting
from tools.services.budgets import payment_budget_set
from tools.services.credentials import credential_create
from tools.services.invocation import invoke_tool
from tools.services.settings import internal_domain_add, tool_setting_update


@register(ToolCall)
def make_tool_call(tenant):
    return invoke_tool(organization=tenant.organization, actor=tenant.member, tool_name="email_draft",
                       arguments={"to": ["a@walker.example"], "subject": "s", "body": "b"}).tool_call


@register(IntegrationCredential)
def make_credential(tenant):
    return credential_create(organization=tenant.organization, actor=tenant.admin, provider="github",
                             secret={"token": "ghp_walker_token_0123456789"})


@register(InternalDomain)
def make_domain(tenant):
    return internal_domain_add(organization=tenant.organization, actor=tenant.admin, domain="walker.example")


@register(PaymentBudget)
def make_budget(tenant):
    return payment_budget_set(organization=tenant.organization, actor=tenant.owner, currency="USD",
                              per_action_limit=1, daily_limit=1, monthly_limit=1)


@register(ToolSetting)
def make_setting(tenant):
    return tool_setting_update(organization=tenant.organization, actor=tenant.admin, tool_name="files_write",
                               enabled=True)


@register(PaymentTransaction)
def make_transaction(tenant):
    call = make_tool_call(tenant)
    return PaymentTransaction.objects.for_org(tenant.organization).create(
        organization=tenant.organization, tool_call=call, kind="payment", amount=100, currency="USD",
        purpose="walker", vendor="walker", provider="stripe", provider_reference="pi_walker", status="succeeded",
    )


# The tool routes are keyed by a tool name; the walker fills it with a row id, which names no tool.
register_url_kwarg("tool_name", ToolSetting)

register_payload(None, "invoke", lambda tenant: {"arguments": {"path": "walker-cross.txt", "text": "x"}})
register_payload(None, "partial_update", lambda tenant: {"enabled": False})
register_payload(IntegrationCredential, "create",
                 lambda tenant: {"provider": "github", "name": "walker2", "secret": {"token": "ghp_x_0123456789"}})
register_payload(IntegrationCredential, "rotate", lambda tenant: {"secret": {"token": "ghp_rotated_0123456789"}})
register_payload(InternalDomain, "create", lambda tenant: {"domain": "cross.example"})
register_payload(PaymentBudget, "create", lambda tenant: {"currency": "EUR", "per_action_limit": 5,
                                                          "daily_limit": 5, "monthly_limit": 5})
register_payload(ToolCall, "compensate", lambda tenant: {"group": "walker"})
