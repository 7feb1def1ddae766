"""Later workflow steps read earlier steps' results through ``{{ steps.<key>.<path> }}``; the parent logs each step."""

from __future__ import annotations

import pytest

from accounts.errors import InvalidInput
from automation.executors import BaseExecutor, ExecutionContext, ExecutionResult
from automation.models import Task, TaskEvent, TaskRun
from automation.services.subtasks import validate_steps
from automation.services.workflows import workflow_create, workflow_start


class Capture(BaseExecutor):
    """Completes with the parameters it was given (as the engine resolved them)."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def execute(self, context: ExecutionContext) -> ExecutionResult:
        self.seen.append(context.parameters)
        return ExecutionResult.completed({"got": context.parameters})


MADE = {"path": "onboarding/a.docx", "size": 12, "to": ["maria@acme.test"], "meta": {"sha": "abc"}}


def start(tenant, steps):
    template = workflow_create(organization=tenant.organization, actor=tenant.manager, name="Refs",
                               definition={"steps": steps})
    return workflow_start(template=template, actor=tenant.member)


def fresh(task):
    return Task.objects.for_org(task.organization).get(pk=task.pk)


def test_a_step_gets_the_values_of_an_earlier_steps_result(tenant_a, engine, executor_registry):
    """A whole-text reference keeps the value's type (number, list, object); inside text it is written out;
    the task keeps the references in its saved parameters, so its record says where values came from."""
    capture = Capture()
    executor_registry("capture", capture)
    started = start(tenant_a, [
        {"key": "make", "title": "Make", "executor": "noop", "parameters": {"output": MADE}},
        {"key": "use", "title": "Use", "executor": "capture", "depends_on": ["make"], "parameters": {
            "file": "{{ steps.make.path }}", "size": "{{steps.make.size}}", "first": "{{ steps.make.to.0 }}",
            "line": "a {{ steps.make.size }}-byte file for {{ steps.make.to }}", "all": "{{ steps.make }}",
            "nested": [{"sha": "{{ steps.make.meta.sha }}"}], "plain": "no reference", "number": 3}},
    ])
    engine.drain()
    assert capture.seen == [{
        "file": "onboarding/a.docx", "size": 12, "first": "maria@acme.test",
        "line": 'a 12-byte file for ["maria@acme.test"]', "all": MADE, "nested": [{"sha": "abc"}],
        "plain": "no reference", "number": 3,
    }]
    use = fresh(started.subtasks["use"])
    assert use.status == "completed"
    assert use.parameters["file"] == "{{ steps.make.path }}"
    assert fresh(started.run.task).status == "completed"


def test_a_reference_to_a_missing_value_fails_the_step_for_good_naming_it(tenant_a, engine, executor_registry):
    """A path the earlier result lacks fails the step at once (no retries), naming the path and what the result
    has; the steps after it are skipped and the run fails naming the step."""
    executor_registry("capture", Capture())
    started = start(tenant_a, [
        {"key": "make", "title": "Make", "executor": "noop", "parameters": {"output": MADE}},
        {"key": "use", "title": "Use", "executor": "capture", "depends_on": ["make"], "max_retries": 3,
         "parameters": {"file": "{{ steps.make.download_url }}"}},
        {"key": "after", "title": "After", "executor": "noop", "depends_on": ["use"]},
    ])
    engine.drain()
    use = fresh(started.subtasks["use"])
    assert use.status == "failed"
    assert "'download_url'" in use.failure_reason
    assert "keys meta, path, size, to" in use.failure_reason
    assert TaskRun.objects.for_org(tenant_a.organization).filter(task=use).count() == 1
    assert fresh(started.subtasks["after"]).status == "skipped"
    parent = fresh(started.run.task)
    assert parent.status == "failed"
    assert "'Use'" in parent.failure_reason


@pytest.mark.parametrize(
    ("steps", "field", "words"),
    [
        ([{"key": "a", "title": "A", "executor": "noop", "parameters": {"x": "{{ steps.ghost.path }}"}}],
         "definition.steps[0].parameters", "unknown step(s): ghost"),
        ([{"key": "a", "title": "A"},
          {"key": "b", "title": "B", "executor": "noop", "parameters": {"x": "{{ steps.a.path }}"}}],
         "definition.steps[1].depends_on", "without depending on it"),
        ([{"key": "a", "title": "A", "executor": "noop", "parameters": {"x": "{{ steps.a.path }}"}}],
         "definition.steps[0].depends_on", "without depending on it"),
    ],
)
def test_definitions_with_references_no_run_could_resolve_are_refused(tenant_a, steps, field, words):
    """A reference to an unknown step, to a step not waited for, or to the step itself: refused when saved."""
    with pytest.raises(InvalidInput) as caught:
        workflow_create(organization=tenant_a.organization, actor=tenant_a.manager, name="Bad",
                        definition={"steps": steps})
    assert caught.value.field == field
    assert words in caught.value.message


def test_a_reference_through_intermediate_steps_is_accepted(tenant_a, engine, executor_registry):
    """A step may use the result of any step it waits for, also through other steps."""
    capture = Capture()
    executor_registry("capture", capture)
    start(tenant_a, [
        {"key": "a", "title": "A", "executor": "noop", "parameters": {"output": {"id": 7}}},
        {"key": "b", "title": "B", "depends_on": ["a"]},
        {"key": "c", "title": "C", "executor": "capture", "depends_on": ["b"],
         "parameters": {"id": "{{ steps.a.id }}"}},
    ])
    engine.drain()
    assert capture.seen == [{"id": 7}]


def test_the_parent_logs_each_step_as_it_finishes(tenant_a, engine):
    """The workflow's own task gets a ``subtask_finished`` event per step, in the order the steps ended."""
    started = start(tenant_a, [
        {"key": "a", "title": "A"}, {"key": "b", "title": "B", "depends_on": ["a"]},
        {"key": "c", "title": "C", "depends_on": ["b"]},
    ])
    engine.drain()
    parent = started.run.task
    events = list(TaskEvent.objects.for_org(tenant_a.organization).filter(task=parent).order_by("sequence"))
    finished = [e.payload for e in events if e.type == "subtask_finished"]
    slug = started.run.template.slug
    assert [(f["step"], f["status"]) for f in finished] == [(f"{slug}:a", "completed"), (f"{slug}:b", "completed"),
                                                            (f"{slug}:c", "completed")]
    assert [f["subtask"] for f in finished] == [started.subtasks[k].pk for k in "abc"]


def test_tool_arguments_still_templates_are_checked_when_filled_in():
    """Saving a tool step: a placeholder where an address or a date goes is accepted for now, but an argument the
    tool does not take, or a wrong value that is no placeholder, is refused naming it."""
    step = {"key": "mail", "title": "Mail", "executor": "tool", "parameters": {"tool": "email_send", "arguments": {
        "to": ["{{ email }}"], "subject": "Hi", "body": "Your number is {{ steps.hris.employee_id }}",
        "attachments": [{"path": "{{ steps.offer.path }}"}]}}}
    assert validate_steps([step])[0]["parameters"]["arguments"]["to"] == ["{{ email }}"]
    bad = {**step, "parameters": {"tool": "email_send", "arguments": {**step["parameters"]["arguments"],
                                                                      "colour": "red"}}}
    with pytest.raises(InvalidInput, match="colour"):
        validate_steps([bad])
    wrong = {**step, "parameters": {"tool": "email_send", "arguments": {**step["parameters"]["arguments"],
                                                                        "cc": ["not an address"]}}}
    with pytest.raises(InvalidInput, match="cc"):
        validate_steps([wrong])


def test_a_task_outside_a_workflow_keeps_such_text_as_it_is(tenant_a, engine, executor_registry):
    """A task that is no workflow step has no steps to refer to: text that looks like a reference is left alone."""
    from automation.services.tasks import task_create

    capture = Capture()
    executor_registry("capture", capture)
    task = task_create(organization=tenant_a.organization, actor=tenant_a.member, title="Literal", source="api",
                       executor="capture", parameters={"body": "Write {{ steps.x.y }} in the template"})
    engine.drain()
    assert capture.seen == [{"body": "Write {{ steps.x.y }} in the template"}]
    assert fresh(task).status == "completed"
