"""The engine in one process: retries, limits, breakers, priorities, leases, the outbox, estimates."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from accounts.errors import InvalidInput
from automation.executors import BaseExecutor, ExecutionResult
from automation.models import (
    BlockedKind,
    BreakerState,
    CircuitBreaker,
    ConcurrencyLimit,
    RunStatus,
    SideEffect,
    SideEffectStatus,
    Task,
    TaskEvent,
    TaskRun,
    TaskRunLog,
    TaskStatus,
)
from automation.services import dispatch, outbox, reconciler, runner
from automation.services import tasks as services
from automation.services.estimates import estimate_duration
from automation.services.status import dispatch_rank, effective_priority
from tests.automation.factories import make_task

S = TaskStatus


class Script(BaseExecutor):
    """Plays a list of outcomes, one per attempt: 'ok', 'fail', 'fatal', 'raise', 'park'."""

    def __init__(self, *outcomes: str, effect: str = "") -> None:
        self.outcomes = list(outcomes)
        self.effect = effect
        self.calls = 0

    def execute(self, context):
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if self.effect:
            context.emit(self.effect, "record", {"to": "ada@example.test"})
        context.log(f"attempt {context.attempt}: {outcome}")
        if outcome == "raise":
            raise ConnectionError("the API hung up")
        if outcome == "fail":
            return ExecutionResult.failed("HTTP 503 from the provider")
        if outcome == "fatal":
            return ExecutionResult.failed("HTTP 400: bad request", retryable=False)
        if outcome == "park":
            return ExecutionResult.parked("waiting for the customer's answer")
        return ExecutionResult.completed({"attempt": context.attempt}, cost=0.25)


def _fresh(task: Task) -> Task:
    task.refresh_from_db()
    return task


def _make_due(task: Task) -> None:
    Task.objects.for_org(task.organization).filter(pk=task.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_backoff_grows_exponentially_with_jitter_and_a_cap(settings):
    """Retry n waits base·2^(n-1) scaled by a jitter in [50%, 100%], never more than the cap."""
    settings.AUTOMATION_RETRY_BASE_SECONDS = 2
    settings.AUTOMATION_RETRY_CAP_SECONDS = 60
    rng = random.Random(7)
    for n, ceiling in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 32), (6, 60), (9, 60)]:
        delays = [runner.backoff_seconds(n, rng=rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len({round(d, 6) for d in delays}) > 40  # jittered, not a constant


def test_retries_wait_in_postgresql_and_every_attempt_is_a_run(tenant_a, engine, executor_registry, settings):
    """Two failures then success: each attempt is a TaskRun; retries wait in the row (no message) until due."""
    settings.AUTOMATION_RETRY_BASE_SECONDS = 10
    executor_registry("script", Script("raise", "fail", "ok"))
    task = make_task(tenant_a.organization, title="Sync contacts", executor="script", max_retries=3)
    before = timezone.now()
    engine.step()
    task = _fresh(task)
    assert task.status == S.QUEUED
    assert task.retry_count == 1
    assert timedelta(seconds=5) <= task.next_attempt_at - before <= timedelta(seconds=11)
    assert not engine.messages  # no ETA message: the row holds the delay
    assert reconciler.reconcile().published == 0  # not due yet
    _make_due(task)
    assert reconciler.reconcile().published == 1
    engine.step()
    task = _fresh(task)
    assert (task.status, task.retry_count) == (S.QUEUED, 2)
    _make_due(task)
    reconciler.reconcile()
    engine.drain()
    task = _fresh(task)
    assert task.status == S.COMPLETED
    assert task.result == {"attempt": 3}
    runs = list(TaskRun.objects.for_org(tenant_a.organization).filter(task=task).order_by("attempt"))
    assert [(r.attempt, r.status) for r in runs] == [(1, "failed"), (2, "failed"), (3, "completed")]
    assert "ConnectionError: the API hung up" in runs[0].error
    assert "Traceback" in runs[0].traceback
    assert runs[2].cost == pytest.approx(0.25)
    delays = [e.payload["delay_seconds"] for e in TaskEvent.objects.for_org(tenant_a.organization)
              .filter(task=task, type="retry_scheduled").order_by("sequence")]
    assert 5 <= delays[0] <= 10
    assert 10 <= delays[1] <= 20


def test_a_task_fails_when_its_retries_are_used_up_or_the_error_is_final(tenant_a, engine, executor_registry):
    """Retryable errors stop after max_retries; a non-retryable one fails at once, with the reason kept."""
    executor_registry("script", Script("fail"))
    executor_registry("fatal", Script("fatal"))
    worn_out = make_task(tenant_a.organization, title="Flaky", executor="script", max_retries=1)
    hopeless = make_task(tenant_a.organization, title="Bad input", executor="fatal", max_retries=5)
    engine.drain()
    _make_due(worn_out)
    reconciler.reconcile()
    engine.drain()
    assert _fresh(worn_out).status == S.FAILED
    assert worn_out.failure_reason == "HTTP 503 from the provider (after 2 attempts)"
    assert _fresh(hopeless).status == S.FAILED
    assert hopeless.failure_reason == "HTTP 400: bad request"
    assert TaskRun.objects.for_org(tenant_a.organization).filter(task=hopeless).count() == 1


def test_an_organization_cannot_run_more_than_its_limit(tenants, engine):
    """With a limit of 2, a third claim in the organization waits; the other organization is unaffected;
    a freed slot publishes the waiting task."""
    a, b = tenants
    ConcurrencyLimit.objects.for_org(a.organization).create(organization=a.organization, max_in_progress=2)
    tasks = [make_task(a.organization, title=f"Job {i}", execution_type="semi_automated") for i in range(3)]
    other = make_task(b.organization, title="Their job", execution_type="semi_automated")
    for task in [*tasks, other]:
        services.task_execute(task=task, actor=None)
    engine.messages.clear()
    first = dispatch.claim(organization_id=a.organization.pk, hint_task_id=tasks[0].pk, worker="w1")
    second = dispatch.claim(organization_id=a.organization.pk, hint_task_id=tasks[1].pk, worker="w2")
    assert first is not None
    assert second is not None
    assert dispatch.claim(organization_id=a.organization.pk, hint_task_id=tasks[2].pk, worker="w3") is None
    assert _fresh(tasks[2]).status == S.QUEUED
    assert tasks[2].dispatched_at is None  # marked as needing a message
    assert dispatch.claim(organization_id=b.organization.pk, hint_task_id=other.pk, worker="w4") is not None
    runner.finish(task_id=first.task.pk, run_id=first.run.pk, token=first.run.lease_token,
                  result=ExecutionResult.completed())
    assert list(engine.messages) == [(a.organization.pk, tasks[2].pk)]
    engine.drain()
    assert _fresh(tasks[2]).status == S.COMPLETED


def test_circuit_opens_after_repeated_failures_and_a_successful_probe_closes_it(tenant_a, engine,
                                                                                  executor_registry, settings):
    """Three failures open the executor's circuit: its work waits while other work runs; after the
    cool-down one probe runs, and its success closes the circuit."""
    settings.AUTOMATION_BREAKER_THRESHOLD = 3
    settings.AUTOMATION_BREAKER_COOLDOWN_SECONDS = 30
    crm = Script("fail")
    executor_registry("crm", crm)
    org = tenant_a.organization
    failing = [make_task(org, title=f"Push lead {i}", executor="crm", max_retries=0) for i in range(3)]
    engine.drain()
    assert [_fresh(t).status for t in failing] == [S.FAILED] * 3
    breaker = CircuitBreaker.objects.for_org(org).get(key="crm")
    assert breaker.state == BreakerState.OPEN
    waiting = make_task(org, title="Push lead 4", executor="crm", max_retries=0)
    unrelated = make_task(org, title="Unrelated", executor="noop")
    engine.drain()
    assert _fresh(waiting).status == S.QUEUED  # held back by the open circuit
    assert _fresh(unrelated).status == S.COMPLETED
    assert crm.calls == 3

    CircuitBreaker.objects.for_org(org).filter(pk=breaker.pk).update(
        opened_at=timezone.now() - timedelta(seconds=31)
    )
    crm.outcomes = ["ok"]
    assert reconciler.reconcile().published == 1
    engine.drain()
    assert _fresh(waiting).status == S.COMPLETED
    breaker.refresh_from_db()
    assert (breaker.state, breaker.consecutive_failures) == (BreakerState.CLOSED, 0)


def test_a_failed_probe_opens_the_circuit_again(tenant_a, engine, executor_registry, settings):
    """A half-open circuit whose probe fails is open again, with a new cool-down."""
    settings.AUTOMATION_BREAKER_THRESHOLD = 1
    executor_registry("crm", Script("fail"))
    org = tenant_a.organization
    make_task(org, title="First", executor="crm", max_retries=0)
    engine.drain()
    probe = make_task(org, title="Probe", executor="crm", max_retries=0)
    CircuitBreaker.objects.for_org(org).update(opened_at=timezone.now() - timedelta(hours=1))
    engine.drain()
    assert _fresh(probe).status == S.FAILED
    breaker = CircuitBreaker.objects.for_org(org).get(key="crm")
    assert breaker.state == BreakerState.OPEN
    assert timezone.now() - breaker.opened_at < timedelta(seconds=5)


def test_priority_orders_work_and_aging_lets_old_low_priority_work_through(tenant_a, engine, settings):
    """The urgent task starts first; a low-priority task that waited long enough overtakes new urgent work."""
    settings.AUTOMATION_PRIORITY_AGING_SECONDS = 10
    org = tenant_a.organization
    low = make_task(org, title="Tidy archive", priority=10)
    urgent = make_task(org, title="Refund customer", priority=100)
    claim = dispatch.claim(organization_id=org.pk, hint_task_id=low.pk, worker="w")
    assert claim.task.pk == urgent.pk
    runner.finish(task_id=urgent.pk, run_id=claim.run.pk, token=claim.run.lease_token,
                  result=ExecutionResult.completed())

    newer = make_task(org, title="Another refund", priority=100)
    long_ago = timezone.now() - timedelta(seconds=1000)
    Task.objects.for_org(org).filter(pk=low.pk).update(queued_at=long_ago, dispatch_rank=dispatch_rank(10, long_ago))
    assert effective_priority(_fresh(low)) == 10 + 100
    assert effective_priority(_fresh(newer)) == 100
    claim = dispatch.claim(organization_id=org.pk, hint_task_id=newer.pk, worker="w")
    assert claim.task.pk == low.pk


def test_an_expired_lease_is_taken_back_and_the_late_result_discarded(tenant_a, engine, settings):
    """A worker that stops heartbeating loses the task: the attempt is marked lost, the task runs again,
    and the old worker's late report changes nothing."""
    settings.AUTOMATION_LEASE_SECONDS = 5
    task = make_task(tenant_a.organization, title="Reconcile ledger", max_retries=2)
    engine.messages.clear()
    doomed = dispatch.claim(organization_id=task.organization_id, hint_task_id=task.pk, worker="doomed")
    assert reconciler.reconcile().leases_expired == 0
    report = reconciler.reconcile(now=timezone.now() + timedelta(seconds=6))
    assert report.leases_expired == 1
    assert _fresh(task).status == S.QUEUED
    assert _fresh(task).retry_count == 1
    engine.drain()
    assert _fresh(task).status == S.COMPLETED
    late = runner.finish(task_id=task.pk, run_id=doomed.run.pk, token=doomed.run.lease_token,
                         result=ExecutionResult.completed({"late": True}))
    assert late == "discarded"
    task = _fresh(task)
    assert task.status == S.COMPLETED
    assert task.result is None
    runs = TaskRun.objects.for_org(tenant_a.organization).filter(task=task).order_by("attempt")
    assert [(r.attempt, r.status, r.worker) for r in runs] == [(1, "lost", "doomed"), (2, "completed", "inline")]


def test_a_side_effect_is_recorded_and_delivered_once_however_often_the_step_runs(tenant_a, engine,
                                                                                   executor_registry):
    """The step emits the same effect on each of its three attempts: one outbox row, delivered once."""
    executor_registry("mailer", Script("fail", "fail", "ok", effect="email:welcome"))
    delivered = []
    outbox.register_effect_handler("record", lambda effect: delivered.append(effect.idempotency_key) or {})
    try:
        task = make_task(tenant_a.organization, title="Welcome Ada", executor="mailer", max_retries=3)
        for _ in range(3):
            engine.drain()
            _make_due(task)
            reconciler.reconcile()
        engine.drain()
        assert _fresh(task).status == S.COMPLETED
        rows = SideEffect.objects.for_org(tenant_a.organization).filter(task=task)
        assert [(r.key, r.idempotency_key) for r in rows] == [("email:welcome", f"task:{task.pk}:email:welcome")]
        assert outbox.deliver_pending(organization_id=tenant_a.organization.pk) == 1
        assert outbox.deliver_pending(organization_id=tenant_a.organization.pk) == 0
        assert delivered == [f"task:{task.pk}:email:welcome"]
        assert rows.get().status == SideEffectStatus.DELIVERED
    finally:
        outbox.register_effect_handler("record", outbox._record)


def test_cancelling_a_running_task_discards_its_result_and_effects(tenant_a, engine):
    """A task cancelled while a worker runs it stays cancelled; the worker's result and effects are dropped."""
    task = make_task(tenant_a.organization, title="Long export",
                     parameters={"effects": [{"key": "notify", "kind": "record"}]})
    engine.messages.clear()
    claim = dispatch.claim(organization_id=task.organization_id, hint_task_id=task.pk, worker="w")
    services.task_cancel(task=task, actor=tenant_a.member, reason="not needed")
    result = runner.execute(runner.ExecutionContext(task=claim.task, run=claim.run))
    assert runner.finish(task_id=task.pk, run_id=claim.run.pk, token=claim.run.lease_token, result=result) == \
        "discarded"
    assert _fresh(task).status == S.CANCELLED
    assert TaskRun.objects.for_org(tenant_a.organization).get(task=task).status == RunStatus.CANCELLED
    assert not SideEffect.objects.for_org(tenant_a.organization).filter(task=task).exists()


def test_a_parked_task_waits_blocked_and_resumes_on_any_worker(tenant_a, engine, executor_registry):
    """An executor that parks blocks the task with its reason; resuming runs the executor again."""
    executor_registry("ask", Script("park", "ok"))
    task = make_task(tenant_a.organization, title="Ask the customer", executor="ask")
    engine.drain()
    task = _fresh(task)
    assert (task.status, task.blocked_kind) == (S.BLOCKED, BlockedKind.PARKED)
    assert task.blocked_reason == "waiting for the customer's answer"
    services.task_resume(task=task, actor=None, actor_label="approval:1", reason="answered")
    engine.drain(worker="another-worker")
    assert _fresh(task).status == S.COMPLETED
    assert TaskRun.objects.for_org(tenant_a.organization).filter(task=task).last().worker == "another-worker"


def test_semi_automated_tasks_wait_for_a_person_and_manual_ones_are_done_by_people(tenant_a, engine):
    """A semi-automated task runs only after execute; a manual task cannot be executed, only started/completed."""
    org = tenant_a.organization
    semi = make_task(org, title="Send offer", execution_type="semi_automated")
    manual = make_task(org, title="Call the client", execution_type="manual")
    engine.drain()
    assert _fresh(semi).status == S.PENDING
    services.task_execute(task=semi, actor=tenant_a.manager)
    engine.drain()
    assert _fresh(semi).status == S.COMPLETED
    with pytest.raises(InvalidInput, match="manual"):
        services.task_execute(task=manual, actor=tenant_a.manager)
    services.task_start(task=manual, actor=tenant_a.member)
    services.task_complete(task=manual, actor=tenant_a.member, result={"notes": "agreed"})
    manual = _fresh(manual)
    assert (manual.status, manual.result) == (S.COMPLETED, {"notes": "agreed"})
    assert manual.actual_duration is not None


def test_the_full_log_is_kept_and_the_run_keeps_an_excerpt(tenant_a, engine, executor_registry):
    """A long log is stored whole in TaskRunLog; the run row keeps its tail."""

    class Chatty(BaseExecutor):
        def execute(self, context):
            for i in range(2000):
                context.log(f"line {i}: processed record")
            return ExecutionResult.completed({"rows": 2000})

    executor_registry("chatty", Chatty())
    task = make_task(tenant_a.organization, title="Import", executor="chatty")
    engine.drain()
    run = TaskRun.objects.for_org(tenant_a.organization).get(task=task)
    full = TaskRunLog.objects.for_org(tenant_a.organization).get(run=run)
    assert full.text.count("\n") == 1999
    assert len(run.log_excerpt) <= 4001
    assert run.log_excerpt.endswith("line 1999: processed record")
    assert run.log_size == len(full.text)


def test_unknown_executors_and_bad_parameters_are_refused_at_creation(tenant_a):
    """Creating a task for an unregistered executor names the registered ones; nothing is saved."""
    with pytest.raises(InvalidInput) as caught:
        make_task(tenant_a.organization, title="Teleport", executor="teleport")
    assert caught.value.field == "executor"
    assert "unknown executor 'teleport'" in caught.value.message
    assert "noop" in caught.value.message
    with pytest.raises(InvalidInput) as caught:
        make_task(tenant_a.organization, title="Wait", executor="wait", parameters={"seconds": -1})
    assert caught.value.field == "parameters.seconds"
    assert not Task.objects.for_org(tenant_a.organization).exists()


def test_duration_is_predicted_from_similar_completed_tasks(tenant_a, engine):
    """Same step first, then same executor with a similar title, then the executor's history."""
    org = tenant_a.organization

    def done(title, seconds, step_key=""):
        task = make_task(org, title=title, execution_type="manual", step_key=step_key)
        Task.objects.for_org(org).filter(pk=task.pk).update(status=S.COMPLETED,
                                                           actual_duration=timedelta(seconds=seconds))

    done("Prepare weekly sales report", 100)
    done("Prepare weekly sales report for Berlin", 120)
    done("Water the office plants", 5)
    done("Onboard: create accounts", 40, step_key="onboarding:accounts")
    done("Onboard: create accounts", 60, step_key="onboarding:accounts")
    similar = estimate_duration(organization_id=org.pk, executor="noop", title="Weekly sales report for Munich")
    assert similar == timedelta(seconds=110)
    by_step = estimate_duration(organization_id=org.pk, executor="noop", title="anything",
                                step_key="onboarding:accounts")
    assert by_step == timedelta(seconds=50)
    task = make_task(org, title="Weekly sales report for Paris", execution_type="manual")
    assert task.estimated_duration == timedelta(seconds=110)
    assert estimate_duration(organization_id=org.pk, executor="wait", title="Sales report") is None


def test_estimates_of_waiting_tasks_follow_new_history(tenant_a, engine):
    """When a run of a step completes, waiting tasks of the same step are re-estimated."""
    org = tenant_a.organization
    gate = make_task(org, title="Gate", execution_type="manual")
    waiting = make_task(org, title="Count stock", step_key="inventory:count", depends_on=[gate])
    assert waiting.estimated_duration is None
    make_task(org, title="Count stock", step_key="inventory:count")
    engine.drain()
    assert _fresh(waiting).estimated_duration is not None


def test_setup_periodic_tasks_declares_the_system_jobs_once(db):
    """The command writes every declared system job (the engine's and other apps') into django-celery-beat,
    is idempotent, and removes stale ones."""
    every = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="system:retired.job", task="retired.job", interval=every)
    call_command("setup_periodic_tasks")
    call_command("setup_periodic_tasks")
    job = PeriodicTask.objects.get(name="system:automation.reconcile")
    assert job.task == "automation.reconcile"
    assert job.interval.every == 2
    assert job.enabled
    assert PeriodicTask.objects.filter(name="system:automation.reconcile").count() == 1
    assert not PeriodicTask.objects.filter(name="system:retired.job").exists()
    from automation.system_jobs import system_jobs

    declared = {job.periodic_task_name for job in system_jobs()}
    assert declared <= set(PeriodicTask.objects.values_list("name", flat=True))  # jobs other apps declare too
