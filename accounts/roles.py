"""Roles, ordered from least to most trusted, and the scopes each one grants."""

from __future__ import annotations

from django.db import models


class Role(models.IntegerChoices):
    VIEWER = 10, "Viewer"
    MEMBER = 20, "Member"
    MANAGER = 30, "Manager"
    ADMIN = 40, "Admin"
    OWNER = 50, "Owner"

    @classmethod
    def from_name(cls, name: str) -> Role:
        try:
            return cls[name.upper()]
        except KeyError as exc:
            raise ValueError(f"unknown role {name!r}; choose one of {', '.join(r.label.lower() for r in cls)}") from exc

    @property
    def slug(self) -> str:
        return self.name.lower()


class Scope:
    """Every scope a role or an API key can carry."""

    ORG_READ = "org:read"
    ORG_WRITE = "org:write"
    MEMBERS_READ = "members:read"
    MEMBERS_MANAGE = "members:manage"
    API_KEYS_MANAGE = "apikeys:manage"
    AUDIT_READ = "audit:read"
    TASKS_READ = "tasks:read"
    TASKS_WRITE = "tasks:write"
    TASKS_EXECUTE = "tasks:execute"
    WORKFLOWS_READ = "workflows:read"
    WORKFLOWS_WRITE = "workflows:write"
    SCHEDULES_READ = "schedules:read"
    SCHEDULES_WRITE = "schedules:write"
    APPROVALS_READ = "approvals:read"
    APPROVALS_DECIDE = "approvals:decide"
    TOOLS_READ = "tools:read"
    TOOLS_USE = "tools:use"
    TOOLS_MANAGE = "tools:manage"
    TOOLS_FINANCIAL = "tools:financial"
    MEMORY_READ = "memory:read"
    MEMORY_WRITE = "memory:write"
    AGENTS_USE = "agents:use"
    USAGE_READ = "usage:read"

    @classmethod
    def all(cls) -> frozenset[str]:
        return frozenset(v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str))


_VIEWER = {
    Scope.ORG_READ,
    Scope.MEMBERS_READ,
    Scope.TASKS_READ,
    Scope.WORKFLOWS_READ,
    Scope.SCHEDULES_READ,
    Scope.APPROVALS_READ,
    Scope.TOOLS_READ,
    Scope.MEMORY_READ,
}
_MEMBER = _VIEWER | {
    Scope.TASKS_WRITE,
    Scope.TASKS_EXECUTE,
    Scope.SCHEDULES_WRITE,
    Scope.TOOLS_USE,
    Scope.MEMORY_WRITE,
    Scope.AGENTS_USE,
}
_MANAGER = _MEMBER | {
    Scope.WORKFLOWS_WRITE,
    Scope.APPROVALS_DECIDE,
    Scope.AUDIT_READ,
    Scope.USAGE_READ,
}
_ADMIN = _MANAGER | {
    Scope.ORG_WRITE,
    Scope.MEMBERS_MANAGE,
    Scope.API_KEYS_MANAGE,
    Scope.TOOLS_MANAGE,
    Scope.TOOLS_FINANCIAL,
}
_OWNER = _ADMIN

ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.VIEWER: frozenset(_VIEWER),
    Role.MEMBER: frozenset(_MEMBER),
    Role.MANAGER: frozenset(_MANAGER),
    Role.ADMIN: frozenset(_ADMIN),
    Role.OWNER: frozenset(_OWNER),
}


def scopes_for_role(role: int) -> frozenset[str]:
    return ROLE_SCOPES[Role(role)]
