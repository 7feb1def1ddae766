"""Reusable, versioned workflow templates: a DAG of typed steps.

A version's ``definition`` is immutable once saved; editing a workflow adds a
version. Starting a version creates a parent task with one subtask per step
(see ``automation.services.workflows``); ``WorkflowRun`` links the two.
"""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.tenancy import OrganizationOwned


class WorkflowTemplate(OrganizationOwned):
    """A named workflow; its steps live in versions."""

    slug = models.SlugField(max_length=80)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    latest_version = models.PositiveIntegerField(default=0)
    archived = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="workflow_slug_per_org")]

    def __str__(self) -> str:
        return self.name


class WorkflowVersion(OrganizationOwned):
    """One immutable version of a workflow's definition.

    ``definition``: ``{"inputs": [{"name", "required", "description"}], "steps": [{"key", "title",
    "executor", "parameters", "depends_on", "on_dependency_failure", "max_retries", "description"}]}``.
    """

    template = models.ForeignKey(WorkflowTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField(encoder=DjangoJSONEncoder)
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["template_id", "-number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="workflowversion_unique_number")]

    def __str__(self) -> str:
        return f"{self.template_id} v{self.number}"


class WorkflowRun(OrganizationOwned):
    """A started workflow: the parent task whose subtasks are the steps."""

    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="runs")
    template = models.ForeignKey(WorkflowTemplate, on_delete=models.CASCADE, related_name="runs")
    task = models.OneToOneField("automation.Task", on_delete=models.CASCADE, related_name="workflow_run")
    inputs = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "template", "-created_at"], name="workflowrun_template")]

    def __str__(self) -> str:
        return f"run of {self.template_id} v{self.version_id}"
