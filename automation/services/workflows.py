"""Workflow templates: versioned DAGs of steps, and starting them as a parent task with subtasks.

A definition is ``{"inputs": [...], "steps": [...]}``. Steps follow the
engine's step format (``automation.services.subtasks``): ``key``, ``title``,
``executor``, ``parameters``, ``depends_on``, ``on_dependency_failure``
(skip or block), ``run_if_dependency_failed``, ``max_retries``, ``priority``,
``execution_type``, ``description``. Text anywhere in a step may use
``{{ name }}`` for an input (or ``today``); unknown names are refused when the
version is saved, missing required inputs when the workflow is started. A
step's parameters may also use ``{{ steps.<key>.<path> }}`` for the result of
a step it depends on, filled in when it runs (``automation.services.step_outputs``).

Starting a workflow creates, in one transaction, a parent task (source
``workflow``, executor ``subflow``, assigned to the workflow) and its
subtasks with their dependencies. Independent steps start at once; the parent
completes when every step has, or fails naming the step that failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.errors import Conflict, InvalidInput, NotFound
from accounts.models import Organization, User
from accounts.services.audit import audit_record
from automation.models import AssigneeKind, TaskSource
from automation.models.workflows import WorkflowRun, WorkflowTemplate, WorkflowVersion
from automation.services import schedules_clock as clock
from automation.services.step_outputs import check_step_references
from automation.services.subtasks import subtasks_create, validate_steps
from automation.services.tasks import Assignee, task_create

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
INPUT_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,49}$")
BUILTINS = frozenset({"today", "workflow"})
MAX_INPUTS = 30


# --- definitions -----------------------------------------------------------------------


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(_placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_placeholders(v) for v in value)) if value else set()
    return set()


def _render(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {k: _render(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, values) for v in value]
    return value


def _check_inputs(inputs: Any) -> list[dict[str, Any]]:
    if inputs is None:
        return []
    if not isinstance(inputs, list) or len(inputs) > MAX_INPUTS:
        raise InvalidInput(f"inputs is a list of at most {MAX_INPUTS} {{name, required, description}}",
                           field="definition.inputs")
    checked: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(inputs):
        field = f"definition.inputs[{index}]"
        if not isinstance(item, dict) or set(item) - {"name", "required", "description", "default"}:
            raise InvalidInput("an input is {name, required, description, default}", field=field)
        name = item.get("name")
        if not isinstance(name, str) or not INPUT_NAME.match(name) or name in BUILTINS:
            raise InvalidInput(f"input name {name!r} must be lowercase letters, digits and _ (not "
                               f"{', '.join(sorted(BUILTINS))})", field=f"{field}.name")
        if name in seen:
            raise InvalidInput(f"input {name!r} is declared twice", field=f"{field}.name")
        seen.add(name)
        default = item.get("default")
        if default is not None and not isinstance(default, str):
            raise InvalidInput("a default is text", field=f"{field}.default")
        checked.append({
            "name": name, "required": bool(item.get("required", default is None)),
            "description": str(item.get("description", "")), **({"default": default} if default is not None else {}),
        })
    return checked


def workflow_validate_definition(definition: Any) -> dict[str, Any]:
    """Check a definition (steps: unique keys, known executors and dependencies, no cycle, declared inputs).

    Errors name the place: ``definition.steps[2].depends_on``, or the cycle ``a → b → a``.
    """
    if not isinstance(definition, dict):
        raise InvalidInput("the definition is an object with inputs and steps", field="definition")
    unknown = set(definition) - {"inputs", "steps"}
    if unknown:
        raise InvalidInput(f"unknown definition field(s): {', '.join(sorted(unknown))}", field="definition")
    inputs = _check_inputs(definition.get("inputs"))
    try:
        steps = validate_steps(definition.get("steps"))
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=f"definition.{exc.field or 'steps'}", code=exc.code) from None
    declared = {i["name"] for i in inputs} | BUILTINS
    for index, step in enumerate(steps):
        used = _placeholders({k: v for k, v in step.items() if k not in ("key", "depends_on")})
        missing = sorted(used - declared)
        if missing:
            raise InvalidInput(f"step {step['key']!r} uses undeclared input(s): {', '.join(missing)}",
                               field=f"definition.steps[{index}]")
    try:
        check_step_references(steps)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=f"definition.{exc.field}", code=exc.code) from None
    return {"inputs": inputs, "steps": steps}


# --- templates and versions ------------------------------------------------------------


def _unique_slug(organization: Organization, name: str, wanted: str = "") -> str:
    base = slugify(wanted or name)[:70] or "workflow"
    slug, n = base, 2
    while WorkflowTemplate.objects.for_org(organization).filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def workflow_create(
    *,
    organization: Organization,
    actor: User | None,
    name: str,
    definition: dict[str, Any],
    description: str = "",
    slug: str = "",
    note: str = "",
) -> WorkflowTemplate:
    """Create a workflow with its first version."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("a workflow needs a name of at most 200 characters", field="name")
    if slug and (slugify(slug) != slug or len(slug) > 80):
        raise InvalidInput("a slug is lowercase letters, digits and hyphens", field="slug")
    checked = workflow_validate_definition(definition)
    with transaction.atomic():
        if slug and WorkflowTemplate.objects.for_org(organization).filter(slug=slug).exists():
            raise InvalidInput(f"a workflow with slug {slug!r} exists", field="slug")
        template = WorkflowTemplate.objects.for_org(organization).create(
            organization=organization, name=name, description=description or "",
            slug=slug or _unique_slug(organization, name), latest_version=1,
            created_by=actor if actor is not None and actor.pk else None,
        )
        WorkflowVersion.objects.for_org(organization).create(
            organization=organization, template=template, number=1, definition=checked, note=note[:300],
            created_by=template.created_by,
        )
        audit_record(organization=organization, actor=actor, action="workflow.created", target=template,
                     after={"name": name, "slug": template.slug, "steps": len(checked["steps"])})
    return template


def workflow_update(*, template: WorkflowTemplate, actor: User | None, **changes: Any) -> WorkflowTemplate:
    """Rename, describe or archive a workflow (its steps change through new versions)."""
    unknown = set(changes) - {"name", "description", "archived"}
    if unknown:
        raise InvalidInput(f"cannot update {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    with transaction.atomic():
        template = WorkflowTemplate.objects.for_org(template.organization).select_for_update().get(pk=template.pk)
        before = {"name": template.name, "archived": template.archived}
        if "name" in changes:
            name = (changes["name"] or "").strip()
            if not name or len(name) > 200:
                raise InvalidInput("a workflow needs a name of at most 200 characters", field="name")
            template.name = name
        if "description" in changes:
            template.description = changes["description"] or ""
        if "archived" in changes:
            template.archived = bool(changes["archived"])
        template.save()
        audit_record(organization=template.organization, actor=actor, action="workflow.updated", target=template,
                     before=before, after={"name": template.name, "archived": template.archived})
    return template


def workflow_delete(*, template: WorkflowTemplate, actor: User | None) -> None:
    """Delete a workflow that was never started; one with runs is archived instead (its runs keep their steps)."""
    with transaction.atomic():
        template = WorkflowTemplate.objects.for_org(template.organization).select_for_update().get(pk=template.pk)
        if WorkflowRun.objects.for_org(template.organization).filter(template=template).exists():
            raise Conflict("this workflow has runs: archive it instead", code="has_runs")
        audit_record(organization=template.organization, actor=actor, action="workflow.deleted", target=template,
                     before={"name": template.name, "slug": template.slug})
        WorkflowTemplate.objects.for_org(template.organization).filter(pk=template.pk).delete()


def workflow_version_create(
    *, template: WorkflowTemplate, actor: User | None, definition: dict[str, Any], note: str = ""
) -> WorkflowVersion:
    """Save a new version of the workflow's steps; runs already started keep theirs."""
    checked = workflow_validate_definition(definition)
    with transaction.atomic():
        template = WorkflowTemplate.objects.for_org(template.organization).select_for_update().get(pk=template.pk)
        template.latest_version += 1
        template.save(update_fields=["latest_version", "updated_at"])
        version = WorkflowVersion.objects.for_org(template.organization).create(
            organization=template.organization, template=template, number=template.latest_version,
            definition=checked, note=(note or "")[:300], created_by=actor if actor is not None and actor.pk else None,
        )
        audit_record(organization=template.organization, actor=actor, action="workflow.version_created",
                     target=template, after={"version": version.number, "steps": len(checked["steps"])})
    return version


# --- starting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartedWorkflow:
    run: WorkflowRun
    subtasks: dict[str, Any]


def _input_values(template: WorkflowTemplate, definition: dict[str, Any], inputs: Any,
                  now: datetime) -> dict[str, str]:
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, dict):
        raise InvalidInput("inputs is an object of input name to text", field="inputs")
    declared = {i["name"]: i for i in definition.get("inputs", [])}
    unknown = sorted(set(inputs) - set(declared))
    if unknown:
        raise InvalidInput(f"unknown input(s): {', '.join(unknown)}; this workflow takes "
                           f"{', '.join(declared) or 'none'}", field="inputs")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        value = inputs.get(name, spec.get("default"))
        if value is None or (isinstance(value, str) and not value.strip()):
            if spec.get("required"):
                raise InvalidInput(f"input {name!r} is required", field=f"inputs.{name}")
            value = ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise InvalidInput(f"input {name!r} must be text or a number", field=f"inputs.{name}")
        values[name] = str(value)[:2000]
    local_today = now.astimezone(clock.zone(template.organization.timezone or "UTC")).date().isoformat()
    values.update(today=local_today, workflow=template.name)
    return values


def workflow_start(
    *,
    template: WorkflowTemplate,
    actor: User | None,
    inputs: dict[str, Any] | None = None,
    version_number: int | None = None,
    title: str = "",
    priority: int | None = None,
    source: str = TaskSource.WORKFLOW,
    actor_label: str = "",
    now: datetime | None = None,
) -> StartedWorkflow:
    """Start a version (default: the latest) of a workflow: a parent task with one subtask per step."""
    now = now or timezone.now()
    organization = template.organization
    template = WorkflowTemplate.objects.for_org(organization).select_related("organization").get(pk=template.pk)
    if template.archived:
        raise InvalidInput("this workflow is archived", field="workflow")
    versions = WorkflowVersion.objects.for_org(organization).filter(template=template)
    version = versions.filter(number=version_number or template.latest_version).first()
    if version is None:
        raise NotFound(f"workflow {template.name!r} has no version {version_number}")
    values = _input_values(template, version.definition, inputs, now)
    steps = [
        {**_render({k: v for k, v in step.items() if k not in ("key", "depends_on")}, values),
         "key": step["key"], "depends_on": step["depends_on"],
         "step_key": step.get("step_key") or f"{template.slug}:{step['key']}"}
        for step in version.definition["steps"]
    ]
    try:
        steps = validate_steps(steps)
    except InvalidInput as exc:
        raise InvalidInput(f"with these inputs: {exc.message}", field=f"inputs ({exc.field})", code=exc.code) from None
    run_title = (title or "").strip() or f"{template.name} ({values['today']})"
    with transaction.atomic():
        parent = task_create(
            organization=organization,
            actor=actor,
            actor_label=actor_label,
            title=run_title[:300],
            description=template.description,
            source=source,
            executor="subflow",
            parameters={"steps": steps},
            priority=50 if priority is None else priority,
            assignee=Assignee(kind=AssigneeKind.WORKFLOW, ref=str(template.pk)),
            ai_context={"workflow": template.slug, "version": version.number, "inputs": values},
        )
        subtasks = subtasks_create(parent=parent, steps=steps, actor=actor, actor_label=actor_label, source=source)
        run = WorkflowRun.objects.for_org(organization).create(
            organization=organization, version=version, template=template, task=parent, inputs=values,
            started_by=actor if actor is not None and actor.pk else None,
        )
        if actor is not None and actor.pk:
            audit_record(organization=organization, actor=actor, action="workflow.started", target=template,
                         after={"version": version.number, "task": parent.pk, "run": run.pk})
    return StartedWorkflow(run=run, subtasks=subtasks)
