"""Fixtures of the tools tests: throwaway tools registered for one test, storage in a temp folder."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.roles import Scope
from tools.errors import ToolFailed
from tools.registry import ApprovalPolicy, Tool, registry
from tools.services.budgets import payment_budget_set
from tools.types import Money, SideEffect


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


class Journal:
    """What the throwaway tools did, in order."""

    def __init__(self) -> None:
        self.effects: list[tuple[str, dict]] = []
        self.undone: list[str] = []
        self.fail_next: bool = False


@pytest.fixture
def journal():
    return Journal()


@pytest.fixture
def fake_tools(journal):
    """A read tool, a write tool with compensation, a mailer and a payer, registered for the test."""

    def echo(ctx, args):
        return {"echo": args["text"]}

    def write(ctx, args):
        if journal.fail_next:
            journal.fail_next = False
            raise ToolFailed("the backend said no")
        journal.effects.append(("write", args))
        return {"written": args["name"]}

    def unwrite(ctx, args, result):
        journal.undone.append(result["written"])
        return {"removed": result["written"]}

    def mail(ctx, args):
        journal.effects.append(("mail", args))
        return {"sent_to": args["to"]}

    def pay(ctx, args):
        journal.effects.append(("pay", args))
        return {"paid": args["amount"], "reference": f"pay-{len(journal.effects)}"}

    def unpay(ctx, args, result):
        journal.undone.append(result["reference"])
        return {"refunded": result["reference"]}

    tools = [
        Tool(
            name="t_echo",
            description="Echo text back.",
            parameters={
                "type": "object",
                "properties": {"text": {"type": "string", "maxLength": 100}, "token": {"type": "string"}},
                "required": ["text"],
                "additionalProperties": False,
            },
            handler=echo,
            scope=Scope.TOOLS_READ,
        ),
        Tool(
            name="t_write",
            description="Write a record.",
            parameters={
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
                "additionalProperties": False,
            },
            handler=write,
            compensation=unwrite,
            side_effect=SideEffect.WRITE,
            cost_estimate=Decimal("0.01"),
        ),
        Tool(
            name="t_mail",
            description="Send a message.",
            parameters={
                "type": "object",
                "properties": {"to": {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 1}},
                "required": ["to"],
            },
            handler=mail,
            side_effect=SideEffect.EXTERNAL,
            approval=ApprovalPolicy(outside_domains=True),
            recipients=lambda a: a["to"],
        ),
        Tool(
            name="t_pay",
            description="Pay a vendor.",
            parameters={
                "type": "object",
                "properties": {
                    "amount": {"type": "integer", "minimum": 1},
                    "currency": {"type": "string", "pattern": "^[a-z]{3}$"},
                    "vendor": {"type": "string"},
                },
                "required": ["amount", "currency", "vendor"],
            },
            handler=pay,
            compensation=unpay,
            side_effect=SideEffect.FINANCIAL,
            amount=lambda a: Money(a["amount"], a["currency"]),
        ),
        Tool(
            name="t_expense",
            description="File an expense (approval above 500.00).",
            parameters={
                "type": "object",
                "properties": {"amount": {"type": "integer", "minimum": 1}},
                "required": ["amount"],
            },
            handler=lambda ctx, a: journal.effects.append(("expense", a)) or {"filed": a["amount"]},
            side_effect=SideEffect.WRITE,
            approval=ApprovalPolicy(amount_over=50000),
            amount=lambda a: Money(a["amount"], "USD"),
        ),
    ]
    for tool in tools:
        registry.register(tool, replace=True)
    yield {t.name: t for t in tools}
    for tool in tools:
        registry.unregister(tool.name)


@pytest.fixture
def usd_budget(tenant_a):
    return payment_budget_set(
        organization=tenant_a.organization,
        actor=tenant_a.owner,
        currency="USD",
        per_action_limit=100_000,
        daily_limit=200_000,
        monthly_limit=1_000_000,
    )


@pytest.fixture
def smtp_sink(settings):
    """A real SMTP server on loopback, with Django's SMTP backend pointed at it."""
    from tests.tools.support.smtp import SmtpSink

    sink = SmtpSink().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = sink.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "staffer@staffer.test"
    yield sink
    sink.stop()


@pytest.fixture
def providers(settings):
    """Stub Slack, GitHub, BambooHR and Stripe servers on loopback, configured as the providers' base URLs."""
    from tests.tools.support.providers import Providers

    stubs = Providers()
    settings.TOOLS_INTEGRATION_URLS = {
        "slack": f"{stubs.base}/slack",
        "github": f"{stubs.base}/github",
        "bamboohr": f"{stubs.base}/bamboo",
        "stripe": f"{stubs.base}/stripe",
    }
    yield stubs
    stubs.close()


@pytest.fixture
def credentials(tenant_a, providers):
    """The four integrations' credentials for tenant A."""
    from tests.tools.support import providers as p
    from tools.services.credentials import credential_create

    org, admin = tenant_a.organization, tenant_a.admin
    credential_create(organization=org, actor=admin, provider="slack",
                      secret={"webhook_url": f"{providers.base}/slack{p.SLACK_PATH}"})
    credential_create(organization=org, actor=admin, provider="github", secret={"token": p.GITHUB_TOKEN})
    credential_create(organization=org, actor=admin, provider="bamboohr",
                      secret={"api_key": p.BAMBOO_KEY, "company_domain": "acme"})
    credential_create(organization=org, actor=admin, provider="stripe", secret={"secret_key": p.STRIPE_KEY})
    return providers
