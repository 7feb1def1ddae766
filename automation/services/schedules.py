"""Tenant schedules: create, change, and the ticker that fires them.

The ticker (``schedules_tick``) is one system periodic job, run every few
seconds. It takes due schedules in batches with ``SELECT … FOR UPDATE SKIP
LOCKED``, so any number of tickers can run at once without firing a schedule
twice: each batch is one transaction that creates the tasks, records one
``ScheduleFiring`` per scheduled time (unique) and moves ``next_run_at`` on.

Missed runs (the system was down, or the ticker fell behind by more than the
grace period) follow the schedule's policy:

- ``skip``: runs more than ``GRACE`` late are dropped; the schedule continues
  with its next future time;
- ``run_once``: one run stands for everything missed;
- ``catch_up``: every missed run, at most ``max_catch_up`` of them (the most
  recent), oldest first.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import InvalidInput, ServiceError
from accounts.models import Organization, User
from accounts.services.audit import audit_record
from automation.executors import get_executor
from automation.models import ExecutionType, Task, TaskSource
from automation.models.schedules import (
    MAX_CATCH_UP,
    MissedRunPolicy,
    Recurrence,
    Schedule,
    ScheduleFiring,
    ScheduleKind,
)
from automation.services import schedules_clock as clock
from automation.services.tasks import task_create

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
TICK_BUDGET_SECONDS = 4.0
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_.:-]{0,99}$")


def grace() -> timedelta:
    """How late a run may be and still count as on time (``SCHEDULE_GRACE_SECONDS``, default 300)."""
    return timedelta(seconds=float(getattr(settings, "SCHEDULE_GRACE_SECONDS", 300)))


# --- validation --------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskTemplateInput:
    title: str
    description: str = ""
    executor: str = "noop"
    parameters: dict[str, Any] = field(default_factory=dict)
    execution_type: str = ExecutionType.FULLY_AUTOMATED
    priority: int = 50


def check_task_template(template: TaskTemplateInput) -> TaskTemplateInput:
    """Validate the task a schedule or trigger will create (known executor, valid parameters)."""
    title = (template.title or "").strip()
    if not title:
        raise InvalidInput("the task needs a title", field="task_title")
    if len(title) > 300:
        raise InvalidInput("a task title has at most 300 characters", field="task_title")
    if template.execution_type not in ExecutionType.values:
        raise InvalidInput(
            f"{template.execution_type!r} is not one of {', '.join(ExecutionType.values)}", field="task_execution_type"
        )
    priority = template.priority
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 100:
        raise InvalidInput("priority must be a whole number from 0 to 100", field="task_priority")
    if not isinstance(template.parameters, dict):
        raise InvalidInput("parameters must be a JSON object", field="task_parameters")
    try:
        executor = get_executor(template.executor)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field="task_executor", code=exc.code) from exc
    try:
        parameters = executor.validate(dict(template.parameters))
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field="task_parameters", code=exc.code) from exc
    return TaskTemplateInput(
        title=title, description=template.description or "", executor=template.executor, parameters=parameters,
        execution_type=template.execution_type, priority=priority,
    )


@dataclass(frozen=True)
class TimingInput:
    kind: str
    cron_expression: str = ""
    timezone: str = ""
    interval_seconds: int | None = None
    run_at: datetime | None = None
    event_name: str = ""


@dataclass(frozen=True)
class CheckedTiming:
    fields: dict[str, Any]
    next_run_at: datetime | None


def check_timing(timing: TimingInput, *, now: datetime, allowed_kinds: tuple[str, ...],
                 default_timezone: str, run_at_changed: bool = True) -> CheckedTiming:
    """Validate a timing and compute its first run after ``now``; problems name their field."""
    kind = timing.kind
    if kind not in allowed_kinds:
        raise InvalidInput(f"{kind!r} is not one of {', '.join(allowed_kinds)}", field="kind")
    tz = timing.timezone or default_timezone or "UTC"
    clock.zone(tz)
    if timing.run_at is not None and timing.run_at.tzinfo is None:
        raise InvalidInput("run_at needs a time zone offset (e.g. 2026-03-01T09:00:00+01:00)", field="run_at")
    fields: dict[str, Any] = {
        "kind": kind, "cron_expression": "", "timezone": tz, "interval_seconds": None, "run_at": None,
    }
    if kind == clock.KIND_CRON:
        fields["cron_expression"] = clock.validate_cron(timing.cron_expression, tz, now=now)
    elif kind == clock.KIND_INTERVAL:
        seconds = timing.interval_seconds
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise InvalidInput("an interval schedule needs interval_seconds", field="interval_seconds")
        if not clock.MIN_INTERVAL_SECONDS <= seconds <= clock.MAX_INTERVAL_SECONDS:
            raise InvalidInput(
                f"interval_seconds must be from {clock.MIN_INTERVAL_SECONDS} to {clock.MAX_INTERVAL_SECONDS}",
                field="interval_seconds",
            )
        fields["interval_seconds"] = seconds
        fields["run_at"] = timing.run_at or now + timedelta(seconds=seconds)
    elif kind == clock.KIND_ONE_OFF:
        if timing.run_at is None:
            raise InvalidInput("a one-off schedule needs run_at", field="run_at")
        if run_at_changed and timing.run_at <= now:
            raise InvalidInput(f"run_at {timing.run_at.isoformat()} is in the past", field="run_at")
        fields["run_at"] = timing.run_at
    elif kind == clock.KIND_EVENT:
        name = (timing.event_name or "").strip()
        if not EVENT_NAME.match(name):
            raise InvalidInput(
                "an event schedule needs event_name: lowercase letters, digits and . _ : - (e.g. 'invoice.paid')",
                field="event_name",
            )
    fields["event_name"] = timing.event_name.strip() if kind == clock.KIND_EVENT else ""
    next_run_at = None
    if kind != clock.KIND_EVENT:
        next_run_at = timing_of_fields(fields).next_after(now - timedelta(microseconds=1))
    return CheckedTiming(fields=fields, next_run_at=next_run_at)


def check_policy(policy: str, max_catch_up: int) -> None:
    if policy not in MissedRunPolicy.values:
        raise InvalidInput(f"{policy!r} is not one of {', '.join(MissedRunPolicy.values)}", field="missed_run_policy")
    if isinstance(max_catch_up, bool) or not isinstance(max_catch_up, int) or not 1 <= max_catch_up <= MAX_CATCH_UP:
        raise InvalidInput(f"max_catch_up must be from 1 to {MAX_CATCH_UP}", field="max_catch_up")


def timing_of_fields(fields: dict[str, Any]) -> clock.Timing:
    return clock.Timing(
        kind=fields["kind"], cron_expression=fields.get("cron_expression", ""), timezone=fields.get("timezone", "UTC"),
        interval_seconds=fields.get("interval_seconds"), anchor=fields.get("run_at"),
    )


def timing_of(row: Recurrence) -> clock.Timing:
    return clock.Timing(
        kind=row.kind, cron_expression=row.cron_expression, timezone=row.timezone,
        interval_seconds=row.interval_seconds, anchor=row.run_at,
    )


# --- writes ---------------------------------------------------------------------------------

SCHEDULE_KINDS = (clock.KIND_CRON, clock.KIND_INTERVAL, clock.KIND_ONE_OFF, clock.KIND_EVENT)
TIMING_KEYS = ("kind", "cron_expression", "timezone", "interval_seconds", "run_at", "event_name")
TEMPLATE_KEYS = ("task_title", "task_description", "task_executor", "task_parameters", "task_execution_type",
                 "task_priority")
UPDATABLE = frozenset({"name", "missed_run_policy", "max_catch_up", "enabled", *TIMING_KEYS, *TEMPLATE_KEYS})


def _snapshot(schedule: Schedule) -> dict[str, Any]:
    return {
        "name": schedule.name, "kind": schedule.kind, "cron_expression": schedule.cron_expression,
        "timezone": schedule.timezone, "interval_seconds": schedule.interval_seconds, "run_at": schedule.run_at,
        "event_name": schedule.event_name, "missed_run_policy": schedule.missed_run_policy,
        "max_catch_up": schedule.max_catch_up, "enabled": schedule.enabled, "next_run_at": schedule.next_run_at,
        "task_title": schedule.task_title, "task_executor": schedule.task_executor,
    }


def template_from(values: dict[str, Any]) -> TaskTemplateInput:
    return TaskTemplateInput(
        title=values.get("task_title", ""), description=values.get("task_description", "") or "",
        executor=values.get("task_executor", "noop") or "noop", parameters=values.get("task_parameters") or {},
        execution_type=values.get("task_execution_type") or ExecutionType.FULLY_AUTOMATED,
        priority=values.get("task_priority", 50) if values.get("task_priority") is not None else 50,
    )


def template_fields(template: TaskTemplateInput) -> dict[str, Any]:
    return {
        "task_title": template.title, "task_description": template.description, "task_executor": template.executor,
        "task_parameters": template.parameters, "task_execution_type": template.execution_type,
        "task_priority": template.priority,
    }


def schedule_create(
    *,
    organization: Organization,
    actor: User | None,
    name: str,
    kind: str,
    task_title: str,
    cron_expression: str = "",
    timezone_name: str = "",
    interval_seconds: int | None = None,
    run_at: datetime | None = None,
    event_name: str = "",
    missed_run_policy: str = MissedRunPolicy.RUN_ONCE,
    max_catch_up: int = 10,
    enabled: bool = True,
    task_description: str = "",
    task_executor: str = "noop",
    task_parameters: dict[str, Any] | None = None,
    task_execution_type: str = ExecutionType.FULLY_AUTOMATED,
    task_priority: int = 50,
    now: datetime | None = None,
) -> Schedule:
    """Create a schedule. Invalid cron, time zone, interval, a one-off in the past or an unknown
    executor raise InvalidInput naming the field; nothing is stored."""
    now = now or timezone.now()
    name = (name or "").strip()
    if not name:
        raise InvalidInput("a schedule needs a name", field="name")
    if len(name) > 200:
        raise InvalidInput("a name has at most 200 characters", field="name")
    timing = check_timing(
        TimingInput(kind=kind, cron_expression=cron_expression, timezone=timezone_name,
                    interval_seconds=interval_seconds, run_at=run_at, event_name=event_name),
        now=now, allowed_kinds=SCHEDULE_KINDS, default_timezone=organization.timezone,
    )
    check_policy(missed_run_policy, max_catch_up)
    template = check_task_template(template_from({
        "task_title": task_title, "task_description": task_description, "task_executor": task_executor,
        "task_parameters": task_parameters, "task_execution_type": task_execution_type,
        "task_priority": task_priority,
    }))
    with transaction.atomic():
        schedule = Schedule(
            organization=organization,
            name=name,
            missed_run_policy=missed_run_policy,
            max_catch_up=max_catch_up,
            enabled=bool(enabled),
            next_run_at=timing.next_run_at,
            created_by=actor if actor is not None and actor.pk else None,
            **timing.fields,
            **template_fields(template),
        )
        schedule.save(force_insert=True)
        audit_record(organization=organization, actor=actor, action="schedule.created", target=schedule,
                     after=_snapshot(schedule))
    return schedule


def schedule_update(*, schedule: Schedule, actor: User | None, now: datetime | None = None,
                    **changes: Any) -> Schedule:
    """Change a schedule. A change of timing (or enabling it again) recomputes the next run from now."""
    if "timezone_name" in changes:
        changes["timezone"] = changes.pop("timezone_name")
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise InvalidInput(f"cannot update {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    now = now or timezone.now()
    with transaction.atomic():
        schedule = Schedule.objects.for_org(schedule.organization).select_for_update().get(pk=schedule.pk)
        before = _snapshot(schedule)
        current = {key: getattr(schedule, key) for key in (*TIMING_KEYS, *TEMPLATE_KEYS)}
        merged = {**current, **changes}
        if "kind" in changes and changes["kind"] != schedule.kind:
            # A new kind starts from its own fields only.
            merged = {**{k: v for k, v in current.items() if k in TEMPLATE_KEYS or k == "timezone"}, **changes}
        timing_changed = any(key in changes and changes[key] != current.get(key) for key in TIMING_KEYS)
        run_at_changed = ("run_at" in changes and changes["run_at"] != schedule.run_at) or (
            "kind" in changes and changes["kind"] != schedule.kind
        )
        timing = check_timing(
            TimingInput(kind=merged["kind"], cron_expression=merged.get("cron_expression") or "",
                        timezone=merged.get("timezone") or "", interval_seconds=merged.get("interval_seconds"),
                        run_at=merged.get("run_at"), event_name=merged.get("event_name") or ""),
            now=now, allowed_kinds=SCHEDULE_KINDS, default_timezone=schedule.organization.timezone,
            run_at_changed=run_at_changed,
        )
        policy = changes.get("missed_run_policy", schedule.missed_run_policy)
        max_catch_up = changes.get("max_catch_up", schedule.max_catch_up)
        check_policy(policy, max_catch_up)
        if "name" in changes:
            name = (changes["name"] or "").strip()
            if not name or len(name) > 200:
                raise InvalidInput("a name has 1 to 200 characters", field="name")
            schedule.name = name
        if any(key in changes for key in TEMPLATE_KEYS):
            for key, value in template_fields(check_task_template(template_from(merged))).items():
                setattr(schedule, key, value)
        for key, value in timing.fields.items():
            setattr(schedule, key, value)
        schedule.missed_run_policy = policy
        schedule.max_catch_up = max_catch_up
        enabling = "enabled" in changes and bool(changes["enabled"]) and not schedule.enabled
        if "enabled" in changes:
            schedule.enabled = bool(changes["enabled"])
        if timing_changed or enabling:
            schedule.next_run_at = timing.next_run_at
        schedule.save()
        audit_record(organization=schedule.organization, actor=actor, action="schedule.updated", target=schedule,
                     before=before, after=_snapshot(schedule))
    return schedule


def schedule_delete(*, schedule: Schedule, actor: User | None) -> None:
    with transaction.atomic():
        audit_record(organization=schedule.organization, actor=actor, action="schedule.deleted", target=schedule,
                     before=_snapshot(schedule))
        Schedule.objects.for_org(schedule.organization).filter(pk=schedule.pk).delete()


def schedule_run_now(*, schedule: Schedule, actor: User | None) -> Task:
    """Create the schedule's task now, outside its timing (its next run is unchanged)."""
    with transaction.atomic():
        task = _create_task(schedule, actor=actor, label=f"schedule:{schedule.pk}")
        audit_record(organization=schedule.organization, actor=actor, action="schedule.run_now", target=schedule,
                     after={"task": task.pk})
    return task


# --- the ticker ---------------------------------------------------------------------------


@dataclass
class TickResult:
    schedules: int = 0
    fired: int = 0
    failed: int = 0
    dropped: int = 0
    batches: int = 0
    more: bool = False


def schedules_tick(
    *,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    budget_seconds: float | None = TICK_BUDGET_SECONDS,
    max_batches: int | None = None,
) -> TickResult:
    """Fire every due schedule (system job; every organization's rows, deliberately).

    Runs batches until none is due, ``max_batches`` ran or ``budget_seconds``
    passed (``result.more`` then says work is left). ``now`` is injectable for
    tests; by default each batch reads the clock afresh.
    """
    result = TickResult()
    started = time.monotonic()
    while True:
        if max_batches is not None and result.batches >= max_batches:
            result.more = True
            break
        if budget_seconds is not None and time.monotonic() - started > budget_seconds:
            result.more = True
            break
        moment = now or timezone.now()
        with transaction.atomic():
            due = list(
                Schedule.objects.dangerously_unscoped()
                .select_for_update(skip_locked=True, of=("self",))
                .select_related("organization")
                .filter(enabled=True, next_run_at__lte=moment)
                .exclude(kind=ScheduleKind.EVENT)
                .order_by("next_run_at")[:batch_size]
            )
            if not due:
                break
            result.batches += 1
            for schedule in due:
                fired, failed, dropped = _fire_due(schedule, moment)
                result.schedules += 1
                result.fired += fired
                result.failed += failed
                result.dropped += dropped
    return result


def _fire_due(schedule: Schedule, now: datetime) -> tuple[int, int, int]:
    """Fire one locked, due schedule per its missed-run policy and move it on. Returns (fired, failed, dropped)."""
    timing = timing_of(schedule)
    first = schedule.next_run_at
    assert first is not None
    policy = schedule.missed_run_policy
    limit = schedule.max_catch_up if policy == MissedRunPolicy.CATCH_UP else 1
    due, more = timing.due_between(first, now, limit=limit)
    if policy == MissedRunPolicy.SKIP:
        on_time = [t for t in due if now - t <= grace()]
        dropped = len(due) - len(on_time) + (1 if more else 0)
        due = on_time
    else:
        dropped = 1 if more else 0
    fired = failed = 0
    last_error = ""
    last_task: Task | None = None
    for scheduled_for in due:
        try:
            with transaction.atomic():
                task = _create_task(schedule, actor=None, label=f"schedule:{schedule.pk}", scheduled_for=scheduled_for)
                ScheduleFiring.objects.for_org(schedule.organization).create(
                    organization=schedule.organization, schedule=schedule, scheduled_for=scheduled_for,
                    fired_at=timezone.now(), task=task,
                )
        except IntegrityError:
            logger.warning("schedule %s already fired for %s", schedule.pk, scheduled_for)
            continue
        except ServiceError as exc:
            failed += 1
            last_error = f"{scheduled_for.isoformat()}: {exc.message}"
            ScheduleFiring.objects.for_org(schedule.organization).get_or_create(
                organization=schedule.organization, schedule=schedule, scheduled_for=scheduled_for,
                defaults={"fired_at": timezone.now(), "error": exc.message[:2000]},
            )
            continue
        fired += 1
        last_task = task
    if dropped and not due:
        last_error = f"missed runs up to {now.isoformat()} skipped ({policy})"
    schedule.next_run_at = timing.next_after(now)
    if due:
        schedule.last_run_at = due[-1]
    schedule.run_count += fired
    if last_task is not None:
        schedule.last_task = last_task
    schedule.last_error = last_error
    schedule.save(update_fields=["next_run_at", "last_run_at", "run_count", "last_task", "last_error", "updated_at"])
    return fired, failed, dropped


def _create_task(schedule: Schedule, *, actor: User | None, label: str,
                 scheduled_for: datetime | None = None) -> Task:
    context: dict[str, Any] = {"schedule_id": schedule.pk, "schedule": schedule.name}
    if scheduled_for is not None:
        context["scheduled_for"] = scheduled_for.isoformat()
    return task_create(
        organization=schedule.organization,
        actor=actor,
        actor_label=label,
        title=schedule.task_title,
        description=schedule.task_description,
        ai_context=context,
        source=TaskSource.SCHEDULE,
        execution_type=schedule.task_execution_type,
        executor=schedule.task_executor,
        parameters=dict(schedule.task_parameters or {}),
        priority=schedule.task_priority,
    )
