from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.roles import Role
from accounts.tenancy import OrganizationOwned


class ToolSetting(OrganizationOwned):
    """An organization's choices for one tool: on or off, who may use it, its approval policy and config.

    A tool with no row uses its registered defaults. ``approval`` overrides keys
    of the tool's approval policy (financial tools always ask regardless);
    ``config`` holds tool-specific options (an http allow list, the commands
    ``run_command`` may run, the organization's own email domains, …).
    """

    tool_name = models.CharField(max_length=64)
    enabled = models.BooleanField(default=True)
    min_role = models.PositiveSmallIntegerField(
        choices=Role.choices, null=True, blank=True, help_text="Lowest role that may use the tool (besides its scope)."
    )
    approval = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tool_name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "tool_name"], name="toolsetting_one_per_tool"),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} ({'on' if self.enabled else 'off'})"


class InternalDomain(OrganizationOwned):
    """An email domain that belongs to the organization: mail to it stays inside.

    With none listed, the domains of the members' addresses count (public mail
    providers excepted). Sending outside asks for approval by default.
    """

    domain = models.CharField(max_length=253)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "domain"], name="internaldomain_once"),
        ]

    def __str__(self) -> str:
        return self.domain
