"""Tasks, their dependencies, execution attempts and the per-task event log.

Status changes go through :mod:`automation.services.status` only; a database
trigger (migration 0002) refuses any transition the machine does not allow.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.tenancy import OrganizationOwned


class TaskStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    IN_PROGRESS = "in_progress", "In progress"
    PAUSED = "paused", "Paused"
    BLOCKED = "blocked", "Blocked"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


class TaskSource(models.TextChoices):
    CHAT = "chat", "Chat"
    API = "api", "API"
    EMAIL = "email", "Email"
    SCHEDULE = "schedule", "Schedule"
    TRIGGER = "trigger", "Trigger"
    AGENT = "agent", "Agent"
    WORKFLOW = "workflow", "Workflow"


class ExecutionType(models.TextChoices):
    MANUAL = "manual", "Manual"
    SEMI_AUTOMATED = "semi_automated", "Semi-automated"
    FULLY_AUTOMATED = "fully_automated", "Fully automated"


class AssigneeKind(models.TextChoices):
    NONE = "", "Nobody"
    USER = "user", "User"
    AGENT = "agent", "Agent profile"
    WORKFLOW = "workflow", "Workflow"


class DependencyFailurePolicy(models.TextChoices):
    SKIP = "skip", "Skip when a dependency fails"
    BLOCK = "block", "Block when a dependency fails"


class BlockedKind(models.TextChoices):
    NONE = "", "Not blocked"
    DEPENDENCY = "dependency", "A dependency failed"
    PARKED = "parked", "Waiting for a person or an outside event"
    SUBTASKS = "subtasks", "Waiting for its subtasks"
    MANUAL = "manual", "Blocked by hand"


class Priority(models.IntegerChoices):
    LOW = 25, "Low"
    NORMAL = 50, "Normal"
    HIGH = 75, "High"
    URGENT = 100, "Urgent"


PRIORITY_MIN = 0
PRIORITY_MAX = 100


class Task(OrganizationOwned):
    """A unit of work: tracked, and for automated tasks executed by an executor."""

    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=TaskSource.choices, default=TaskSource.API)
    execution_type = models.CharField(
        max_length=16, choices=ExecutionType.choices, default=ExecutionType.FULLY_AUTOMATED
    )
    executor = models.CharField(max_length=64, default="noop")
    parameters = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    priority = models.SmallIntegerField(default=Priority.NORMAL)
    dispatch_rank = models.FloatField(
        default=0,
        help_text="Order among queued tasks, higher first: priority × aging interval − seconds since the epoch "
        "at queueing. Equal to ordering by priority plus one point per interval waited, with no updates.",
    )
    due_at = models.DateTimeField(null=True, blank=True)

    assignee_kind = models.CharField(max_length=16, choices=AssigneeKind.choices, default="", blank=True)
    assignee_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    assignee_ref = models.CharField(
        max_length=64, blank=True, help_text="Id of the assigned agent profile or workflow."
    )

    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="subtasks")
    step_key = models.CharField(
        max_length=120, blank=True, help_text="The workflow step (or subflow step) this task executes."
    )
    on_dependency_failure = models.CharField(
        max_length=8, choices=DependencyFailurePolicy.choices, default=DependencyFailurePolicy.SKIP
    )
    run_if_dependency_failed = models.BooleanField(default=False)
    release_approved = models.BooleanField(
        default=False, help_text="A person approved running this (semi-automated) task once its dependencies are done."
    )

    ai_confidence = models.FloatField(null=True, blank=True)
    ai_context = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    blocked_kind = models.CharField(max_length=16, choices=BlockedKind.choices, default="", blank=True)
    blocked_reason = models.TextField(blank=True)
    failure_reason = models.TextField(blank=True)
    retry_count = models.PositiveIntegerField(default=0)
    max_retries = models.PositiveIntegerField(default=3)
    retry_generation = models.PositiveIntegerField(
        default=0,
        help_text="How many times a person retried this task after it failed. A tool step's idempotency key "
                  "carries it: the engine's own re-runs replay the stored outcome, a person's retry calls again.",
    )
    attempt_count = models.PositiveIntegerField(default=0)
    estimated_duration = models.DurationField(null=True, blank=True)
    actual_duration = models.DurationField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)

    # Dispatch and lease bookkeeping (the engine's, not the API's).
    breaker_key = models.CharField(max_length=120, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    event_seq = models.PositiveIntegerField(default=0, help_text="Sequence number of the latest TaskEvent.")

    started_at = models.DateTimeField(null=True, blank=True)
    blocked_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_modified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    dependencies = models.ManyToManyField(
        "self", through="automation.TaskDependency", symmetrical=False, related_name="dependents", blank=True
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "status"], name="task_org_status"),
            models.Index(fields=["organization", "-created_at"], name="task_org_created"),
            models.Index(fields=["organization", "due_at"], name="task_org_due"),
            models.Index(
                fields=["organization", "-dispatch_rank", "id"],
                condition=models.Q(status="queued"),
                name="task_dispatch_order",
            ),
            models.Index(
                fields=["organization", "-dispatch_rank", "id"],
                condition=models.Q(status="queued", dispatched_at__isnull=True),
                name="task_undispatched",
            ),
            models.Index(fields=["organization", "step_key"], condition=~models.Q(step_key=""), name="task_org_step"),
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="queued"), name="task_retry_due"),
            models.Index(
                fields=["lease_expires_at"], condition=models.Q(status="in_progress"), name="task_lease_expiry"
            ),
            models.Index(
                fields=["organization", "executor", "step_key", "-completed_at"],
                condition=models.Q(status="completed"),
                name="task_duration_history",
            ),
            GinIndex(SearchVector("title", "description", config="english"), name="task_search"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(priority__gte=PRIORITY_MIN, priority__lte=PRIORITY_MAX), name="task_priority_range"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in TaskStatus]), name="task_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(ai_confidence__isnull=True)
                | models.Q(ai_confidence__gte=0, ai_confidence__lte=1),
                name="task_ai_confidence_range",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def label(self) -> str:
        """How messages name this task: ``'Send invoice' (#12)``."""
        return f"{self.title!r} (#{self.pk})"


class TaskDependency(OrganizationOwned):
    """``task`` waits for ``depends_on``. Both belong to the same organization."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="dependency_links")
    depends_on = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="dependent_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["task", "depends_on"], name="taskdependency_unique"),
            models.CheckConstraint(
                condition=~models.Q(task=models.F("depends_on")), name="taskdependency_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.task_id} after #{self.depends_on_id}"


class TaskEvent(OrganizationOwned):
    """One entry of a task's execution log. Append-only (a trigger refuses changes).

    ``sequence`` is monotonic per task, so a page that reconnects asks for
    ``?after=<last sequence>`` and misses nothing.
    """

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="events")
    sequence = models.PositiveIntegerField()
    type = models.CharField(max_length=40)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task_id", "sequence"]
        constraints = [models.UniqueConstraint(fields=["task", "sequence"], name="taskevent_unique_sequence")]

    def __str__(self) -> str:
        return f"#{self.task_id}.{self.sequence} {self.type}"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    PARKED = "parked", "Parked"
    LOST = "lost", "Lost (lease expired)"
    CANCELLED = "cancelled", "Cancelled"


class TaskRun(OrganizationOwned):
    """One execution attempt of a task."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="runs")
    attempt = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    executor = models.CharField(max_length=64)
    worker = models.CharField(max_length=200, blank=True)
    lease_token = models.UUIDField(default=uuid.uuid4)
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder, help_text="Possibly truncated.")
    output_truncated = models.BooleanField(default=False)
    log_excerpt = models.TextField(blank=True, help_text="The last part of the log; the full text is in TaskRunLog.")
    log_size = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)

    class Meta:
        ordering = ["task_id", "attempt"]
        constraints = [models.UniqueConstraint(fields=["task", "attempt"], name="taskrun_unique_attempt")]
        indexes = [models.Index(fields=["organization", "executor", "-started_at"], name="taskrun_org_executor")]

    def __str__(self) -> str:
        return f"#{self.task_id} attempt {self.attempt} ({self.status})"


class TaskRunLog(OrganizationOwned):
    """The full captured output and log of one run (the run row keeps an excerpt)."""

    run = models.OneToOneField(TaskRun, on_delete=models.CASCADE, related_name="full_log")
    text = models.TextField(blank=True)
    output_text = models.TextField(blank=True, help_text="The complete output as JSON text.")

    class Meta:
        ordering = ["run_id"]

    def __str__(self) -> str:
        return f"log of run {self.run_id}"
