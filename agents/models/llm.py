"""The LLM gateway's records: per-organization settings, every model call, budget warnings and extensions."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.tenancy import OrganizationOwned


class AgentRole(models.TextChoices):
    """Who asks the model. Each role maps to a tier (see ``agents.llm.conf.role_tiers``)."""

    MANAGER = "manager", "Manager"
    EMPLOYEE = "employee", "Employee"
    SUPERVISOR = "supervisor", "Supervisor"
    CLASSIFIER = "classifier", "Intent classifier"
    EXTRACTOR = "extractor", "Fact extractor"
    ASSISTANT = "assistant", "Assistant"
    SYSTEM = "system", "System"


class Locality(models.TextChoices):
    LOCAL = "local", "On-prem"
    CLOUD = "cloud", "Cloud"
    SCRIPTED = "scripted", "Scripted (offline)"


class CallOutcome(models.TextChoices):
    OK = "ok", "OK"
    FALLBACK = "fallback", "Answered by a fallback deployment"
    ERROR = "error", "Error"
    REFUSED = "refused", "Refused (rate limit or budget)"


class BudgetWindow(models.TextChoices):
    DAILY = "daily", "Daily"
    MONTHLY = "monthly", "Monthly"
    TASK = "task", "Per task"


class OrganizationLLMSettings(OrganizationOwned):
    """An organization's model routing and spending rules. No row: the settings' defaults.

    ``tier_overrides`` maps a tier to an ordered list of deployment names
    (``{"worker": ["local-qwen", "gpt-4o-mini"]}``); ``deployments`` adds
    organization-only deployments in the same shape as ``LLM_DEPLOYMENTS``
    (never API keys: only the name of an environment variable holding one).
    With ``on_prem_only`` no cloud deployment is ever called. In
    ``hybrid_mode`` local deployments are tried first and cloud ones first for
    critical work. Budgets are in ``LLM_CURRENCY``; empty means no limit.
    """

    tier_overrides = models.JSONField(default=dict, blank=True)
    deployments = models.JSONField(default=dict, blank=True)
    on_prem_only = models.BooleanField(default=False)
    hybrid_mode = models.BooleanField(null=True, blank=True, help_text="Empty: the LLM_HYBRID_MODE setting.")
    daily_budget = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    monthly_budget = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    task_budget = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="Default limit for the calls of one task."
    )
    onprem_input_cost_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="Cost of a million input tokens on-prem."
    )
    onprem_output_cost_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    calls_per_hour_per_user = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: the LLM_USER_CALLS_PER_HOUR setting."
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "organization LLM settings"
        verbose_name_plural = "organization LLM settings"
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="llmsettings_one_per_org"),
        ]

    def __str__(self) -> str:
        return f"LLM settings of {self.organization_id}"


class LLMCall(OrganizationOwned):
    """One call of the gateway: who asked, which deployment answered, what it cost, how it ended.

    ``task_id`` and ``run_id`` are plain ids of automation's rows (the gateway
    does not depend on automation). ``attempts`` lists every deployment tried,
    in order, with its error if it failed.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+")
    task_id = models.BigIntegerField(null=True, blank=True)
    run_id = models.BigIntegerField(null=True, blank=True)
    role = models.CharField(max_length=20, choices=AgentRole.choices)
    purpose = models.CharField(max_length=40, blank=True, help_text="plan, step, review, classify, extract, …")
    step_key = models.CharField(max_length=100, blank=True)
    tier = models.CharField(max_length=40)
    model = models.CharField(max_length=200, blank=True, help_text="The LiteLLM model that answered.")
    deployment = models.CharField(max_length=100, blank=True, help_text="The configured deployment that answered.")
    locality = models.CharField(max_length=10, choices=Locality.choices, blank=True)
    scripted = models.BooleanField(default=False, help_text="Answered by the offline scripted model.")
    scenario = models.CharField(max_length=100, blank=True)
    streamed = models.BooleanField(default=False)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    currency = models.CharField(max_length=3, default="USD")
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Time to the first streamed token.")
    outcome = models.CharField(max_length=10, choices=CallOutcome.choices)
    error = models.TextField(blank=True)
    attempts = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "created_at"], name="llmcall_org_created"),
            models.Index(fields=["organization", "task_id"], name="llmcall_org_task",
                         condition=models.Q(task_id__isnull=False)),
            models.Index(fields=["organization", "user", "created_at"], name="llmcall_org_user"),
        ]

    def __str__(self) -> str:
        return f"{self.role} via {self.deployment or '-'}: {self.outcome}"


class LLMBudgetWarning(OrganizationOwned):
    """A budget threshold reached, recorded once per window, period, level (80 or 100 percent) and limit.

    An extension raises the limit, so the thresholds of the new limit warn again.
    """

    window = models.CharField(max_length=10, choices=BudgetWindow.choices)
    period_start = models.DateField(null=True, blank=True, help_text="Day or month start; empty for a task.")
    task_id = models.BigIntegerField(null=True, blank=True)
    level = models.PositiveSmallIntegerField()
    spent = models.DecimalField(max_digits=14, decimal_places=8)
    limit = models.DecimalField(max_digits=14, decimal_places=4)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "window", "period_start", "task_id", "level", "limit"],
                name="llmbudgetwarning_once",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.window} budget at {self.level}%"


class LLMBudgetExtension(OrganizationOwned):
    """More budget for one window (a day, a month or a task), granted by an approved request."""

    window = models.CharField(max_length=10, choices=BudgetWindow.choices)
    period_start = models.DateField(null=True, blank=True)
    task_id = models.BigIntegerField(null=True, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=4)
    currency = models.CharField(max_length=3)
    approval = models.OneToOneField(
        "accounts.ApprovalRequest", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="llmbudgetextension_positive"),
        ]

    def __str__(self) -> str:
        return f"+{self.amount} {self.currency} ({self.window})"
