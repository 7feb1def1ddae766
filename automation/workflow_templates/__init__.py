"""Workflow templates shipped with Staffer (JSON data in this folder) and the demo seed hook.

``builtin_templates()`` reads every ``*.json`` here: ``{"slug", "name",
"description", "definition"}``. ``seed_demo(organization)`` (listed in
``DEMO_SEED_HOOKS``) adds the ones the organization does not have yet.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from accounts.models import Organization
from automation.models import WorkflowTemplate
from automation.services.workflows import workflow_create

FOLDER = Path(__file__).resolve().parent


@cache
def _load() -> tuple[dict[str, Any], ...]:
    return tuple(json.loads(path.read_text()) for path in sorted(FOLDER.glob("*.json")))


def builtin_templates() -> list[dict[str, Any]]:
    """The shipped templates, as plain data (a copy)."""
    return json.loads(json.dumps(_load()))


def install_builtin_templates(organization: Organization) -> list[WorkflowTemplate]:
    """Create each shipped template the organization lacks (matched by slug); return those created."""
    created = []
    existing = set(WorkflowTemplate.objects.for_org(organization).values_list("slug", flat=True))
    for template in builtin_templates():
        if template["slug"] in existing:
            continue
        created.append(workflow_create(
            organization=organization, actor=None, name=template["name"], slug=template["slug"],
            description=template["description"], definition=template["definition"], note="shipped with Staffer",
        ))
    return created


def seed_demo(organization: Organization) -> None:
    """DEMO_SEED_HOOKS entry: give the demo organization the shipped workflows."""
    install_builtin_templates(organization)
