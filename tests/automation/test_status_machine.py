"""The task status machine: services, the database guard, and the event log agree."""

from __future__ import annotations

import itertools

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from accounts.errors import InvalidInput
from automation.executors import BaseExecutor, ExecutionResult
from automation.models import Task, TaskDependency, TaskEvent, TaskRun, TaskStatus
from automation.services import dispatch, reconciler
from automation.services import tasks as services
from automation.services.status import FINAL, TRANSITIONS, is_legal, task_transition, transition_sql_pairs
from tests.automation.factories import make_manual_task, make_task
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

S = TaskStatus
ALL = [s.value for s in TaskStatus]


def _force_status(task: Task, status: str) -> None:
    """Put a row in ``status`` behind the guard's back (replication role skips triggers)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE automation_task SET status = %s WHERE id = %s", [status, task.pk])
        cursor.execute("SET LOCAL session_replication_role = origin")


def test_database_guard_agrees_with_the_transition_table(tenant_a):
    """For every pair of statuses, the PostgreSQL trigger allows exactly the moves the services allow."""
    task = make_manual_task(tenant_a.organization)
    disagreements = []
    for source, target in itertools.product(ALL, ALL):
        if source == target:
            continue
        _force_status(task, source)
        refusal = ""
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("UPDATE automation_task SET status = %s WHERE id = %s", [target, task.pk])
        except (IntegrityError, InternalError) as exc:
            refusal = str(exc)
        allowed = not refusal
        if allowed != is_legal(source, target) or (refusal and f"from {source} to {target}" not in refusal):
            disagreements.append((source, target, refusal))
    assert disagreements == []


def test_database_guard_refuses_a_task_born_finished(tenant_a):
    """A row cannot be inserted already completed: tasks start pending or queued."""
    task = make_manual_task(tenant_a.organization)
    with pytest.raises(IntegrityError, match="starts pending or queued"), transaction.atomic():
        Task.objects.for_org(tenant_a.organization).create(
            organization=tenant_a.organization, title="born done", status=S.COMPLETED
        )
    assert Task.objects.for_org(tenant_a.organization).count() == 1
    assert task.status == S.PENDING


@pytest.mark.parametrize("final", sorted(FINAL))
def test_no_transition_leaves_a_final_state(tenant_a, final):
    """Completed and cancelled are final: every move out is refused by the service, naming both states."""
    assert TRANSITIONS[final] == frozenset()
    task = make_manual_task(tenant_a.organization)
    _force_status(task, final)
    task.refresh_from_db()
    before = TaskEvent.objects.for_org(tenant_a.organization).filter(task=task).count()
    for target in ALL:
        if target == final:
            continue
        with pytest.raises(InvalidInput) as caught:
            task_transition(task=task, to=target)
        assert f"from {final} to {target}" in caught.value.message
        assert "final state" in caught.value.message
    task.refresh_from_db()
    assert task.status == final
    assert TaskEvent.objects.for_org(tenant_a.organization).filter(task=task).count() == before


def test_each_change_appends_an_event_with_the_next_sequence(tenant_a):
    """Every status change writes one event; sequences per task run 1, 2, 3… with actor and from/to."""
    org = tenant_a.organization
    task = make_manual_task(org, actor=tenant_a.member)
    services.task_start(task=task, actor=tenant_a.member)
    services.task_complete(task=task, actor=tenant_a.manager, result={"ok": True})
    events = list(TaskEvent.objects.for_org(org).filter(task=task).order_by("sequence"))
    assert [e.sequence for e in events] == [1, 2, 3]
    assert [e.type for e in events] == ["created", "status_changed", "status_changed"]
    assert (events[1].payload["from"], events[1].payload["to"]) == ("pending", "in_progress")
    assert (events[2].actor, events[2].actor_label) == (tenant_a.manager, tenant_a.manager.email)
    task.refresh_from_db()
    assert task.event_seq == 3


def test_task_events_are_append_only(tenant_a):
    """The database refuses to change or delete a task event."""
    task = make_manual_task(tenant_a.organization)
    event = TaskEvent.objects.for_org(tenant_a.organization).get(task=task)
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        TaskEvent.objects.for_org(tenant_a.organization).filter(pk=event.pk).update(type="forged")
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        TaskEvent.objects.for_org(tenant_a.organization).filter(pk=event.pk).delete()


# --- the stateful test --------------------------------------------------------------

OUTCOMES = ["completed", "completed", "failed", "fatal", "parked", "raise"]


class Scripted(BaseExecutor):
    """Does whatever the state machine asks for next."""

    outcome = "completed"

    def execute(self, context):
        if self.outcome == "raise":
            raise RuntimeError("boom")
        if self.outcome == "failed":
            return ExecutionResult.failed("scripted failure")
        if self.outcome == "fatal":
            return ExecutionResult.failed("scripted fatal failure", retryable=False)
        if self.outcome == "parked":
            return ExecutionResult.parked("waiting for a person")
        return ExecutionResult.completed({"ok": True})


SCRIPTED = Scripted()


OPS = (
    ["create"] * 4 + ["create_after_failure"] * 2 + ["work"] * 5 + ["work_a_while"] * 2 + ["retry"] * 2
    + ["resume"] * 2 + ["complete"] * 2 + ["execute"] * 2
    + ["cancel", "pause", "start", "fail", "add_dependency", "anything", "worker_dies", "reconcile_later",
       "late_worker_reports", "retries_come_due"]
)
ACTIONS = ["task_execute", "task_cancel", "task_retry", "task_pause", "task_resume", "task_start", "task_complete"]


class TaskMachine(RuleBasedStateMachine):
    """Random sequences of everything people and workers do to tasks."""

    engine = None  # set by the test
    reached: set[str] = set()
    transitions: set[tuple[str, str]] = set()

    @initialize()
    def setup(self):
        self.org = OrganizationFactory()
        self.user = UserFactory()
        MembershipFactory(organization=self.org, user=self.user, role=30)
        self.ids: list[int] = []
        self.seen_final: dict[int, str] = {}
        self.claimed: list[tuple[int, int, object]] = []
        self.engine.messages.clear()

    def _task(self, index: int) -> Task | None:
        if not self.ids:
            return None
        return Task.objects.for_org(self.org).get(pk=self.ids[index % len(self.ids)])

    def _act(self, index: int, action, prefer: tuple[str, ...] = ()) -> None:
        candidates = list(Task.objects.for_org(self.org).filter(status__in=prefer).order_by("pk")) if prefer else []
        task = candidates[index % len(candidates)] if candidates else self._task(index)
        if task is None:
            return
        before = (task.status, task.event_seq)
        try:
            action(task)
        except InvalidInput:
            task.refresh_from_db()
            assert (task.status, task.event_seq) == before, "a refused action changed the task"

    def _create(self, kind, deps, policy, run_if, retries, chain):
        picked = sorted({self.ids[i % len(self.ids)] for i in deps}) if self.ids else []
        depends_on = self.ids[-2:] if chain else picked
        task = make_task(self.org, actor=self.user, title=f"T{len(self.ids)}", execution_type=kind,
                         executor="scripted", depends_on=depends_on, on_dependency_failure=policy,
                         run_if_dependency_failed=run_if, max_retries=retries)
        self.ids.append(task.pk)

    @rule(op=st.sampled_from(OPS), index=st.integers(0, 30), other=st.integers(0, 30),
          outcomes=st.lists(st.sampled_from(OUTCOMES), min_size=1, max_size=8),
          action=st.sampled_from(ACTIONS),
          kind=st.sampled_from(["fully_automated", "fully_automated", "semi_automated", "manual"]),
          deps=st.sets(st.integers(0, 30), max_size=2), policy=st.sampled_from(["skip", "block"]),
          run_if=st.booleans(), retries=st.integers(0, 2), chain=st.booleans())
    def step(self, op, index, other, outcomes, action, kind, deps, policy, run_if, retries, chain):
        """One thing a person, a worker or the reconciler does."""
        user = self.user
        if op == "create":
            self._create(kind, deps, policy, run_if, retries, chain)
        elif op == "create_after_failure":
            failed = list(Task.objects.for_org(self.org).filter(status__in=("failed", "skipped", "cancelled"))
                          .values_list("pk", flat=True))
            if failed:
                task = make_task(self.org, actor=self.user, title=f"T{len(self.ids)}", executor="scripted",
                                 depends_on=[failed[index % len(failed)]], on_dependency_failure=policy,
                                 run_if_dependency_failed=run_if)
                self.ids.append(task.pk)
        elif op == "work":
            self._work(outcomes[:1])
        elif op == "work_a_while":
            self._work(outcomes)
        elif op == "execute":
            self._act(index, lambda t: services.task_execute(task=t, actor=user), prefer=("pending",))
        elif op == "cancel":
            self._act(index, lambda t: services.task_cancel(task=t, actor=user),
                      prefer=("pending", "queued", "in_progress", "blocked", "paused"))
        elif op == "retry":
            self._act(index, lambda t: services.task_retry(task=t, actor=user), prefer=("failed",))
        elif op == "pause":
            self._act(index, lambda t: services.task_pause(task=t, actor=user), prefer=("pending", "queued"))
        elif op == "resume":
            self._act(index, lambda t: services.task_resume(task=t, actor=user), prefer=("paused", "blocked"))
        elif op == "start":
            self._act(index, lambda t: services.task_start(task=t, actor=user), prefer=("pending",))
        elif op == "complete":
            self._act(index, lambda t: services.task_complete(task=t, actor=user),
                      prefer=("blocked", "in_progress", "pending"))
        elif op == "fail":
            self._act(index, lambda t: services.task_fail(task=t, actor=user, reason="no"),
                      prefer=("blocked", "in_progress"))
        elif op == "anything":
            self._act(index, lambda t: getattr(services, action)(task=t, actor=user))
        elif op == "add_dependency":
            self._add_dependency(index, other)
        elif op == "worker_dies":
            self._worker_dies()
        elif op == "reconcile_later":
            reconciler.reconcile(now=timezone.now() + timezone.timedelta(hours=1))
        elif op == "late_worker_reports":
            self._late_worker_reports()
        elif op == "retries_come_due":
            Task.objects.for_org(self.org).filter(status=S.QUEUED).update(next_attempt_at=None)
            reconciler.publish_waiting(timezone.now(), broker_idle=True)

    def _work(self, outcomes: list[str]) -> None:
        for outcome in outcomes:
            if not self.engine.messages:
                return
            SCRIPTED.outcome = outcome
            self.engine.step()

    def _add_dependency(self, index: int, other: int) -> None:
        task, dependency = self._task(index), self._task(other)
        if task is None:
            return
        before = task.status
        try:
            services.dependency_add(task=task, depends_on=dependency, actor=self.user)
        except InvalidInput as exc:
            refusal = exc
        else:
            return
        task.refresh_from_db()
        assert task.status == before
        assert refusal.code != "cycle" or "→" in refusal.message

    def _worker_dies(self) -> None:
        queued = Task.objects.for_org(self.org).filter(status=S.QUEUED).order_by("pk").first()
        if queued is None:
            return
        claim = dispatch.claim(organization_id=self.org.pk, hint_task_id=queued.pk, worker="doomed")
        if claim is not None:
            self.claimed.append((claim.task.pk, claim.run.pk, claim.run.lease_token))

    def _late_worker_reports(self) -> None:
        if not self.claimed:
            return
        from automation.services.runner import finish

        task_id, run_id, token = self.claimed.pop(0)
        before = Task.objects.for_org(self.org).get(pk=task_id)
        outcome = finish(task_id=task_id, run_id=run_id, token=token, result=ExecutionResult.completed("late"))
        after = Task.objects.for_org(self.org).get(pk=task_id)
        if before.lease_token != token:
            assert outcome == "discarded"
            assert after.status == before.status

    @invariant()
    def engine_invariants(self):
        """Checked after every step: the log follows the machine, finals stay final, only ready work runs,
        a leased task has exactly one live run."""
        if not getattr(self, "ids", None):
            return
        tasks = {t.pk: t for t in Task.objects.for_org(self.org)}
        by_task: dict[int, list[TaskEvent]] = {}
        for event in TaskEvent.objects.for_org(self.org).order_by("task_id", "sequence"):
            by_task.setdefault(event.task_id, []).append(event)
        for task_id, rows in by_task.items():
            assert [e.sequence for e in rows] == list(range(1, len(rows) + 1)), "sequence gap or repeat"
            status = "pending"
            for event in rows:
                if event.type == "status_changed":
                    assert event.payload["from"] == status, "an event's 'from' is not the previous 'to'"
                    assert is_legal(status, event.payload["to"]), f"illegal {status} -> {event.payload['to']}"
                    self.transitions.add((status, event.payload["to"]))
                    status = event.payload["to"]
            assert status == tasks[task_id].status, "the log does not end in the task's status"
            assert tasks[task_id].event_seq == len(rows)
        for task in tasks.values():
            self.reached.add(task.status)
            if task.pk in self.seen_final:
                assert task.status == self.seen_final[task.pk], "a task left a final state"
            elif task.status in FINAL:
                self.seen_final[task.pk] = task.status
        for task_id, dependency in TaskDependency.objects.for_org(self.org).values_list("task_id", "depends_on_id"):
            task = tasks[task_id]
            if task.status in (S.QUEUED, S.IN_PROGRESS) and not task.run_if_dependency_failed:
                assert tasks[dependency].status == S.COMPLETED, (
                    f"task {task_id} is {task.status} while dependency {dependency} is {tasks[dependency].status}"
                )
        live = dict(
            TaskRun.objects.for_org(self.org).filter(status="running").values_list("lease_token", "task_id")
        )
        for task in tasks.values():
            if task.status == S.IN_PROGRESS and task.lease_token is not None:
                assert live.get(task.lease_token) == task.pk, "a leased task without its live run"


def test_random_operations_keep_the_status_machine(db, engine, executor_registry):
    """Random create/execute/cancel/retry/pause/resume/complete/fail/work/crash/reconcile sequences never
    produce an illegal transition, never leave a final state, log every change with gap-free sequences,
    and a refused action changes nothing."""
    executor_registry("scripted", SCRIPTED)
    TaskMachine.engine = engine
    run_state_machine_as_test(
        TaskMachine,
        settings=settings(max_examples=25, stateful_step_count=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]),
    )
    missed = set(transition_sql_pairs()) - TaskMachine.transitions
    print(f"transitions exercised: {len(TaskMachine.transitions)}; never: {sorted(missed)}")
    assert set(ALL) <= TaskMachine.reached, f"never reached {set(ALL) - TaskMachine.reached}"
