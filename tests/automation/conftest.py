"""Automation test helpers: an in-process engine that runs published work synchronously."""

from __future__ import annotations

from collections import deque

import pytest

from automation.executors import register_executor, unregister_executor
from automation.services import dispatch, outbox, reconciler, runner


class InlineEngine:
    """Collects the "work on X" messages instead of sending them; ``drain()`` runs them here, in order."""

    def __init__(self) -> None:
        self.messages: deque[tuple[int, int]] = deque()
        self.deliveries: list[int] = []
        self.outcomes: list[str] = []

    def publish(self, task) -> None:
        self.messages.append((task.organization_id, task.pk))

    def step(self, worker: str = "inline") -> str:
        organization_id, task_id = self.messages.popleft()
        outcome = runner.process(organization_id=organization_id, task_id=task_id, worker=worker)
        self.outcomes.append(outcome)
        return outcome

    def drain(self, limit: int = 10_000, worker: str = "inline") -> int:
        steps = 0
        while self.messages and steps < limit:
            self.step(worker)
            steps += 1
        return steps


@pytest.fixture
def engine(monkeypatch) -> InlineEngine:
    inline = InlineEngine()
    monkeypatch.setattr(dispatch, "publish_on_commit", inline.publish)
    monkeypatch.setattr(runner, "deliver_on_commit", inline.deliveries.append)
    monkeypatch.setattr(outbox, "deliver_on_commit", inline.deliveries.append)
    monkeypatch.setattr(reconciler, "broker_backlog", lambda: 0)
    return inline


@pytest.fixture
def executor_registry():
    """Register executors for one test; they are removed afterwards."""
    added: list[str] = []

    def add(name: str, executor) -> None:
        register_executor(name, executor, replace=True)
        added.append(name)

    yield add
    for name in added:
        unregister_executor(name)
