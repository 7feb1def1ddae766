"""Dependencies: release on completion, failure propagation, resume after retry, cycles, subflows."""

from __future__ import annotations

import time

import pytest

from accounts.errors import InvalidInput
from automation.executors import BaseExecutor, ExecutionResult
from automation.models import BlockedKind, Task, TaskDependency, TaskEvent, TaskRun, TaskStatus
from automation.services import tasks as services
from tests.automation.factories import make_task

S = TaskStatus


class Flaky(BaseExecutor):
    """Fails (without retry) while ``broken`` is set, then succeeds."""

    broken = True

    def execute(self, context):
        if self.broken:
            return ExecutionResult.failed("the mail server refused", retryable=False)
        return ExecutionResult.completed({"sent": True})


def _status(task: Task) -> str:
    task.refresh_from_db()
    return task.status


def _queued_events(task: Task) -> int:
    return sum(
        1 for e in TaskEvent.objects.for_org(task.organization).filter(task=task, type="status_changed")
        if e.payload["to"] == "queued"
    )


def diamond(org, *, b_executor="noop", b_params=None, c_executor="noop", c_params=None, **d_options):
    a = make_task(org, title="Collect figures")
    b = make_task(org, title="Draft the report", depends_on=[a], executor=b_executor, parameters=b_params or {})
    c = make_task(org, title="Make the charts", depends_on=[a], executor=c_executor, parameters=c_params or {})
    d = make_task(org, title="Send the report", depends_on=[b, c], **d_options)
    return a, b, c, d


def test_diamond_releases_each_task_when_its_last_dependency_completes(tenant_a, engine):
    """A→B, A→C, B,C→D: B and C wait for A; D is released once, only after both B and C completed."""
    a, b, c, d = diamond(tenant_a.organization)
    assert [_status(t) for t in (a, b, c, d)] == [S.QUEUED, S.PENDING, S.PENDING, S.PENDING]
    engine.step()  # A
    assert [_status(t) for t in (b, c, d)] == [S.QUEUED, S.QUEUED, S.PENDING]
    engine.step()  # B (or C)
    assert _status(d) == S.PENDING
    engine.drain()
    assert [_status(t) for t in (a, b, c, d)] == [S.COMPLETED] * 4
    assert _queued_events(d) == 1
    for task in (b, c, d):
        task.refresh_from_db()
    assert d.started_at >= max(b.completed_at, c.completed_at)


def test_failed_dependency_skips_downstream_naming_it_and_retry_resumes_the_chain(tenant_a, engine,
                                                                                   executor_registry):
    """A fails: B and C are skipped naming A, D is skipped naming the chain; retrying A runs all of it."""
    flaky = Flaky()
    executor_registry("flaky", flaky)
    org = tenant_a.organization
    a = make_task(org, title="Fetch invoices", executor="flaky")
    b = make_task(org, title="Total them", depends_on=[a])
    c = make_task(org, title="Chart them", depends_on=[a])
    d = make_task(org, title="Mail the summary", depends_on=[b, c])
    engine.drain()
    assert _status(a) == S.FAILED
    assert a.failure_reason == "the mail server refused"
    for task in (b, c):
        assert _status(task) == S.SKIPPED
        assert f"'Fetch invoices' (#{a.pk}) failed" in task.failure_reason
    assert _status(d) == S.SKIPPED
    assert f"'Fetch invoices' (#{a.pk}) failed" in d.failure_reason  # the root cause is named down the chain

    flaky.broken = False
    services.task_retry(task=a, actor=tenant_a.member)
    assert [_status(t) for t in (a, b, c, d)] == [S.QUEUED, S.PENDING, S.PENDING, S.PENDING]
    engine.drain()
    assert [_status(t) for t in (a, b, c, d)] == [S.COMPLETED] * 4
    assert TaskRun.objects.for_org(org).filter(task=a).count() == 2


def test_block_policy_and_opt_in_to_run_after_a_failure(tenant_a, engine, executor_registry):
    """A task with the block policy is blocked naming the failed task; one that opted in runs anyway."""
    executor_registry("flaky", Flaky())
    org = tenant_a.organization
    a = make_task(org, title="Charge the card", executor="flaky")
    blocked = make_task(org, title="Ship the order", depends_on=[a], on_dependency_failure="block")
    cleanup = make_task(org, title="Release the stock hold", depends_on=[a], run_if_dependency_failed=True)
    engine.drain()
    assert _status(blocked) == S.BLOCKED
    assert blocked.blocked_kind == BlockedKind.DEPENDENCY
    assert f"'Charge the card' (#{a.pk}) failed" in blocked.blocked_reason
    assert _status(cleanup) == S.COMPLETED


def test_a_dependency_that_closes_a_cycle_is_refused_and_named(tenant_a, engine):
    """Adding D as a dependency of A (A→B→D) is refused with the cycle spelled out; nothing changes."""
    a, _b, _c, d = diamond(tenant_a.organization)
    with pytest.raises(InvalidInput) as caught:
        services.dependency_add(task=a, depends_on=d, actor=tenant_a.member)
    assert caught.value.code == "cycle"
    message = caught.value.message
    assert message.startswith("this dependency would create a cycle: 'Collect figures'")
    assert f"(#{a.pk})" in message
    assert f"(#{d.pk})" in message
    assert message.count("→") >= 3
    assert not TaskDependency.objects.for_org(tenant_a.organization).filter(task=a).exists()
    with pytest.raises(InvalidInput, match="cycle"):
        services.dependency_add(task=a, depends_on=a, actor=tenant_a.member)


def test_adding_and_removing_dependencies_holds_and_releases_work(tenant_a, engine):
    """A pending task gains a dependency and waits; removing it releases the task at once."""
    org = tenant_a.organization
    gate = make_task(org, title="Gate", execution_type="manual")
    task = make_task(org, title="Work", execution_type="semi_automated")
    services.dependency_add(task=task, depends_on=gate, actor=tenant_a.member)
    services.task_execute(task=task, actor=tenant_a.member)
    assert _status(task) == S.PENDING  # approved, but waits for the gate
    services.dependency_remove(task=task, depends_on=gate, actor=tenant_a.member)
    assert _status(task) == S.QUEUED


def test_subflow_runs_its_steps_and_completes_with_their_results(tenant_a, engine):
    """A subflow creates its steps as subtasks with their dependencies and completes when they have."""
    steps = [
        {"key": "a", "title": "Collect", "executor": "noop", "parameters": {"output": 1}},
        {"key": "b", "title": "Draft", "depends_on": ["a"], "parameters": {"output": 2}},
        {"key": "c", "title": "Chart", "depends_on": ["a"], "parameters": {"output": 3}},
        {"key": "d", "title": "Send", "depends_on": ["b", "c"], "parameters": {"output": 4}},
    ]
    parent = make_task(tenant_a.organization, title="Weekly report", executor="subflow",
                       parameters={"steps": steps})
    engine.drain()
    assert _status(parent) == S.COMPLETED
    assert parent.result == {"subtasks": {"a": 1, "b": 2, "c": 3, "d": 4}}
    children = Task.objects.for_org(tenant_a.organization).filter(parent=parent)
    assert sorted(children.values_list("status", flat=True)) == [S.COMPLETED] * 4


def test_subflow_fails_naming_the_step_and_resumes_when_the_step_is_retried(tenant_a, engine, executor_registry):
    """A failed step fails its parent naming it; retrying the step reopens the parent, which then completes."""
    flaky = Flaky()
    executor_registry("flaky", flaky)
    steps = [
        {"key": "fetch", "title": "Fetch", "executor": "flaky"},
        {"key": "send", "title": "Send", "depends_on": ["fetch"]},
    ]
    parent = make_task(tenant_a.organization, title="Invoice run", executor="subflow", parameters={"steps": steps})
    engine.drain()
    fetch = Task.objects.for_org(tenant_a.organization).get(parent=parent, step_key="fetch")
    assert _status(parent) == S.FAILED
    assert f"'Fetch' (#{fetch.pk}) failed" in parent.failure_reason
    flaky.broken = False
    services.task_retry(task=fetch, actor=tenant_a.member)
    assert _status(parent) == S.BLOCKED
    engine.drain()
    assert _status(parent) == S.COMPLETED


def test_subflow_steps_are_validated_at_creation(tenant_a):
    """Bad steps (a cycle, an unknown executor, an unknown dependency) are refused naming the problem."""
    org = tenant_a.organization
    cycle = [{"key": "a", "title": "A", "depends_on": ["b"]}, {"key": "b", "title": "B", "depends_on": ["a"]}]
    with pytest.raises(InvalidInput, match="cycle: a → b → a"):
        make_task(org, title="Loop", executor="subflow", parameters={"steps": cycle})
    with pytest.raises(InvalidInput, match="unknown executor 'teleport'") as caught:
        make_task(org, title="X", executor="subflow", parameters={"steps": [{"key": "a", "title": "A",
                                                                              "executor": "teleport"}]})
    assert caught.value.field == "parameters.steps[0].executor"
    with pytest.raises(InvalidInput, match="unknown step key"):
        make_task(org, title="X", executor="subflow",
                  parameters={"steps": [{"key": "a", "title": "A", "depends_on": ["zzz"]}]})
    assert not Task.objects.for_org(org).exists()


def test_a_dependency_finishing_while_an_edge_to_it_is_added_still_releases_the_dependent(transactional_db,
                                                                                           tenant_a, engine):
    """The race a fast worker hits: A completes in one transaction while C is created waiting for A in another.

    Neither may miss the other: C's creation waits for A's completion to
    commit, then sees A completed and is released (without the share lock C
    stayed pending for ever: A's release did not see C's uncommitted edge and
    C's evaluation did not see A's uncommitted completion).
    """
    import threading

    from django.db import connection, transaction

    org = tenant_a.organization
    a = make_task(org, title="Collect figures", execution_type="manual")
    services.task_start(task=a, actor=None)
    created: dict[str, Task] = {}

    def create_dependent() -> None:
        try:
            created["c"] = make_task(org, title="Make the charts", depends_on=[a])
        finally:
            connection.close()

    with transaction.atomic():
        services.task_complete(task=a, actor=None)
        creator = threading.Thread(target=create_dependent)
        creator.start()
        creator.join(timeout=1.0)
        assert creator.is_alive(), "the edge was added while A's completion was uncommitted"
    creator.join(timeout=30)
    assert _status(created["c"]) == S.QUEUED


# --- on a real worker ----------------------------------------------------------------


def _wait_terminal(tasks, timeout=90.0):
    """Wait for the tasks to finish, running the reconciler every few seconds as beat does in production."""
    from automation.services.reconciler import reconcile

    deadline = time.monotonic() + timeout
    next_reconcile = time.monotonic() + 5
    while time.monotonic() < deadline:
        statuses = [_status(t) for t in tasks]
        if all(s in (S.COMPLETED, S.FAILED, S.SKIPPED, S.CANCELLED) for s in statuses):
            return statuses
        if time.monotonic() >= next_reconcile:
            reconcile()
            next_reconcile = time.monotonic() + 5
        time.sleep(0.2)
    raise AssertionError(f"not finished in {timeout}s: {[(t.title, t.status) for t in tasks]}")


@pytest.mark.worker
def test_diamond_on_a_real_worker_runs_branches_in_parallel_and_releases_d_once(transactional_db, tenant_a,
                                                                                celery_worker):
    """On a real two-process worker: B and C (2 s waits) overlap in time, D starts after both and runs once."""
    a, b, c, d = diamond(tenant_a.organization, b_executor="wait", b_params={"seconds": 2},
                         c_executor="wait", c_params={"seconds": 2})
    assert _wait_terminal([a, b, c, d]) == [S.COMPLETED] * 4
    run = {t.title: TaskRun.objects.for_org(tenant_a.organization).get(task=t) for t in (a, b, c, d)}
    rb, rc, rd, ra = run["Draft the report"], run["Make the charts"], run["Send the report"], run["Collect figures"]
    assert rb.started_at >= ra.finished_at
    assert rc.started_at >= ra.finished_at
    assert rb.started_at < rc.finished_at
    assert rc.started_at < rb.finished_at, "B and C did not overlap"
    assert rd.started_at >= max(rb.finished_at, rc.finished_at)
    assert _queued_events(d) == 1
    assert TaskRun.objects.for_org(tenant_a.organization).filter(task=d).count() == 1


def test_cycle_checks_stay_cheap_on_a_wide_layered_graph(tenant_a, django_assert_max_num_queries):
    """In a 20-layer graph where every task waits for two of the layer before (about 2^20 paths), adding a
    task costs one cycle query, and a real cycle from the last layer to the root is still found and named."""
    org = tenant_a.organization
    root = make_task(org, title="root", execution_type="manual")
    layer = [root]
    for depth in range(20):
        layer = [make_task(org, title=f"L{depth}.{i}", execution_type="manual",
                           depends_on=[layer[0].pk, layer[-1].pk]) for i in range(2)]
    from automation.services.graph import find_cycle

    leaf = layer[0]
    with django_assert_max_num_queries(1):
        assert find_cycle(task=leaf, depends_on=root) is None
    cycle = find_cycle(task=root, depends_on=leaf)
    assert cycle[0] == root.pk
    assert cycle[-1] == root.pk
    assert cycle[1] == leaf.pk
    assert len(cycle) == 22
