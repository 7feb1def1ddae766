"""Tasks and runs made through the engine's services (real events, real guards)."""

from __future__ import annotations

from django.utils import timezone

from automation.models import RunStatus, Task, TaskRun
from automation.services.tasks import task_create


def make_task(organization, *, title: str = "Task", actor=None, **kwargs) -> Task:
    kwargs.setdefault("source", "api")
    return task_create(organization=organization, actor=actor, title=title, **kwargs)


def make_manual_task(organization, *, title: str = "Manual task", **kwargs) -> Task:
    return make_task(organization, title=title, execution_type="manual", **kwargs)


def make_run(task: Task, *, attempt: int = 1, status: str = RunStatus.COMPLETED) -> TaskRun:
    now = timezone.now()
    run = TaskRun(organization_id=task.organization_id, task=task, attempt=attempt, executor=task.executor,
                  worker="test", started_at=now, finished_at=now, duration=now - now, status=status)
    run.save(force_insert=True)
    return run
