"""A tool step's idempotency across re-runs and a person's retry."""

from __future__ import annotations

import pytest

from automation.models import Task, TaskStatus
from automation.services import tasks as services
from tests.automation.factories import make_task
from tools.errors import ToolFailed
from tools.models import ToolCall
from tools.registry import Tool, registry
from tools.types import SideEffect

pytestmark = pytest.mark.django_db


class Provider:
    """Answers 503 for the first ``failures`` sends, then accepts; counts what reached it."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sends: list[str] = []

    def send(self, ctx, args):
        self.sends.append(args["text"])
        if len(self.sends) <= self.failures:
            raise ToolFailed("the provider answered 503", code="provider_error")
        return {"sent": args["text"]}


@pytest.fixture
def provider():
    provider = Provider(failures=1)
    registry.register(Tool(
        name="t_notify", description="Notify the team.", handler=provider.send, side_effect=SideEffect.EXTERNAL,
        parameters={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    ), replace=True)
    yield provider
    registry.unregister("t_notify")


def _status(task: Task) -> str:
    task.refresh_from_db()
    return task.status


def test_a_failed_tool_step_is_replayed_by_the_engine_but_called_again_when_a_person_retries(tenant_a, engine,
                                                                                            provider):
    """The provider's 503 fails the step; running the same attempt again replays the stored failure without a
    second send; a person's retry starts a new generation and calls the tool again, which succeeds; a further
    re-run of that generation replays its success."""
    org = tenant_a.organization
    task = make_task(org, title="Tell the team", actor=tenant_a.manager, executor="tool", max_retries=0,
                     parameters={"tool": "t_notify", "arguments": {"text": "release is out"}})
    engine.drain()
    assert _status(task) == TaskStatus.FAILED
    assert "503" in task.failure_reason
    assert provider.sends == ["release is out"]

    from automation.executors.tool import ToolsAppBackend, tool_call_key

    class Context:
        pass

    context = Context()
    context.task = task
    replay = ToolsAppBackend().invoke(context=context, name="t_notify", arguments={"text": "release is out"},
                                      idempotency_key=tool_call_key(task, "t_notify", ToolsAppBackend()))
    assert replay.status == "failed"
    assert "retry the task to call the tool again" in replay.reason
    assert provider.sends == ["release is out"]

    services.task_retry(task=task, actor=tenant_a.manager)
    engine.drain()
    assert _status(task) == TaskStatus.COMPLETED, task.failure_reason
    assert task.retry_generation == 1
    assert task.result == {"sent": "release is out"}
    assert provider.sends == ["release is out", "release is out"]
    keys = list(ToolCall.objects.for_org(org).filter(tool_name="t_notify", claimed=True)
                .order_by("pk").values_list("idempotency_key", "outcome"))
    assert keys == [(f"task:{task.pk}:tool:t_notify", "failed"), (f"task:{task.pk}:tool:t_notify:retry:1",
                                                                  "succeeded")]
    again = ToolsAppBackend().invoke(context=context, name="t_notify", arguments={"text": "release is out"},
                                     idempotency_key=tool_call_key(task, "t_notify", ToolsAppBackend()))
    assert again.status == "succeeded"
    assert len(provider.sends) == 2


def test_a_call_whose_outcome_is_unknown_is_not_repeated_even_by_a_persons_retry(tenant_a, engine):
    """The call timed out: whether it took effect is unknown, so a person's retry does not send again; the
    retried step fails at once, saying the earlier call is not repeated."""
    from tools.errors import ToolTimeout

    sends: list[str] = []

    def slow(ctx, args):
        sends.append(args["text"])
        raise ToolTimeout("the provider did not answer within 30 s")

    registry.register(Tool(
        name="t_slow_notify", description="Notify the team.", handler=slow, side_effect=SideEffect.EXTERNAL,
        parameters={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    ), replace=True)
    try:
        org = tenant_a.organization
        task = make_task(org, title="Tell the team", actor=tenant_a.manager, executor="tool", max_retries=0,
                         parameters={"tool": "t_slow_notify", "arguments": {"text": "release is out"}})
        engine.drain()
        assert _status(task) == TaskStatus.FAILED
        services.task_retry(task=task, actor=tenant_a.manager)
        engine.drain()
        assert _status(task) == TaskStatus.FAILED
        assert "its outcome is unknown, so it is never repeated: check with the provider" in task.failure_reason
        assert sends == ["release is out"]
        assert ToolCall.objects.for_org(org).filter(tool_name="t_slow_notify", claimed=True).count() == 1
    finally:
        registry.unregister("t_slow_notify")
