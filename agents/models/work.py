"""The AI workforce's working state: the Manager's plans and what each AI task is doing or waiting for."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.tenancy import OrganizationOwned


class PlanStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    AWAITING_APPROVAL = "awaiting_approval", "Waiting for approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Replaced by a newer version"
    INVALID = "invalid", "Invalid"
    BLOCKED = "blocked", "Blocked (needs access or a person)"


class Strategy(models.TextChoices):
    IMMEDIATE = "immediate", "Immediate (one step, done now)"
    DECOMPOSE = "decompose", "Decompose (subtasks)"
    BLOCKED = "blocked", "Blocked (needs access or a person)"


class Plan(OrganizationOwned):
    """One version of the Manager's plan for a task: a DAG of typed steps.

    Each step is ``{"id", "title", "depends_on", "role" (employee or
    human), "tools", "success_criteria", "estimate_minutes",
    "needs_approval", "approver", "instructions"}``. A person's edit is a
    new version (``created_by`` set); the earlier one is superseded.
    """

    task = models.ForeignKey("automation.Task", on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=PlanStatus.choices, default=PlanStatus.PROPOSED)
    strategy = models.CharField(max_length=10, choices=Strategy.choices, default=Strategy.DECOMPOSE)
    summary = models.TextField(blank=True)
    steps = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    needs = models.JSONField(default=list, blank=True, help_text="What a blocked plan needs (access, a person).")
    problems = models.JSONField(default=list, blank=True, help_text="Why the plan was refused, per step.")
    author_label = models.CharField(max_length=200, blank=True, help_text="manager, or the person who edited it.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approval = models.ForeignKey(
        "accounts.ApprovalRequest", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    llm_call_id = models.BigIntegerField(null=True, blank=True)
    scripted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task_id", "version"]
        constraints = [models.UniqueConstraint(fields=["task", "version"], name="plan_unique_version")]

    def __str__(self) -> str:
        return f"plan v{self.version} of task {self.task_id} ({self.status})"


class WorkKind(models.TextChoices):
    REQUEST = "request", "A request (the Manager's)"
    STEP = "step", "A step of a plan (an Employee's)"


class Waiting(models.TextChoices):
    NOTHING = "", "Nothing"
    PLAN_APPROVAL = "plan_approval", "The plan's approval"
    STEPS = "steps", "Its steps"
    CLARIFICATION = "clarification", "An answer from the requester"
    TOOL_APPROVAL = "tool_approval", "A tool call's approval"
    OUTPUT_APPROVAL = "output_approval", "Approval of the step's result"
    BUDGET = "budget", "More AI budget"
    ACCESS = "access", "Access or a person's action"


class AgentWork(OrganizationOwned):
    """What the AI roles know about one task while they work on it (durable across attempts and workers).

    A request task (kind ``request``) holds the thread it came from, its
    current plan, how often it was re-planned and what it waits for. A step
    task (kind ``step``, a subtask of the request; or the request itself when
    the plan is one immediate step) holds the Employee's conversation of the
    current revision, the revision number and the Supervisor's verdicts.
    """

    task = models.OneToOneField("automation.Task", on_delete=models.CASCADE, related_name="agent_work")
    kind = models.CharField(max_length=10, choices=WorkKind.choices)
    root = models.ForeignKey("automation.Task", on_delete=models.CASCADE, related_name="+",
                             help_text="The request task (itself for a request).")
    thread = models.ForeignKey("agents.Thread", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    plan = models.ForeignKey(Plan, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    step_id = models.CharField(max_length=64, blank=True)
    step = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    revision = models.PositiveIntegerField(default=1)
    conversation = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    waiting_for = models.CharField(max_length=20, choices=Waiting.choices, default="", blank=True)
    waiting = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder,
                               help_text="What it waits on: approval id, pending tool calls, the question.")
    verdicts = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    tool_results = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder,
                                    help_text="Last successful result per tool (read by later steps).")
    output = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    replans = models.PositiveIntegerField(default=0)
    scenario = models.CharField(max_length=100, blank=True, help_text="The scripted model's scenario, if it answers.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["task_id"]
        indexes = [
            models.Index(fields=["organization", "waiting_for"], name="agentwork_org_waiting",
                         condition=~models.Q(waiting_for="")),
        ]

    def __str__(self) -> str:
        return f"{self.kind} work on task {self.task_id}"
