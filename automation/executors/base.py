"""What an executor is given and what it returns."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from automation.models import Task, TaskRun

ResultStatus = Literal["completed", "failed", "parked"]


@dataclass(frozen=True)
class Effect:
    """A side effect to record in the outbox with the step's state change.

    ``key`` must not depend on the attempt (e.g. ``"email:welcome"``): the
    outbox is unique on (task, key), so a retried step records it once.
    """

    key: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExecutionResult:
    """The outcome of one attempt.

    ``completed``: done, ``output`` becomes the task's result. ``failed``:
    the attempt failed; ``retryable=False`` fails the task at once.
    ``parked``: the task waits (blocked) for a person or an outside event;
    ``park_kind="subtasks"`` waits for its subtasks to finish. ``effects``
    are written to the outbox in the same transaction as the new state.
    """

    status: ResultStatus
    output: Any = None
    log: str = ""
    cost: Decimal = Decimal(0)
    error: str = ""
    traceback: str = ""
    retryable: bool = True
    park_reason: str = ""
    park_kind: Literal["parked", "subtasks"] = "parked"
    effects: list[Effect] = field(default_factory=list)

    @classmethod
    def completed(cls, output: Any = None, *, log: str = "", cost: Decimal | float = 0,
                  effects: list[Effect] | None = None) -> ExecutionResult:
        return cls("completed", output=output, log=log, cost=Decimal(str(cost)), effects=list(effects or []))

    @classmethod
    def failed(cls, error: str, *, log: str = "", retryable: bool = True, cost: Decimal | float = 0,
               output: Any = None) -> ExecutionResult:
        return cls("failed", output=output, error=error, log=log, retryable=retryable, cost=Decimal(str(cost)))

    @classmethod
    def parked(cls, reason: str, *, kind: Literal["parked", "subtasks"] = "parked", output: Any = None,
               log: str = "", effects: list[Effect] | None = None) -> ExecutionResult:
        return cls("parked", output=output, park_reason=reason, park_kind=kind, log=log,
                   effects=list(effects or []))


class ExecutionContext:
    """Handed to ``Executor.execute``: the task, its run, a log and the outbox.

    ``task`` is a fresh copy of the row taken when the attempt started; do
    not save it (the engine owns the task's state). ``lease_lost`` becomes
    set when the engine took the task back (cancelled, or the lease expired):
    long executors should check it (``sleep`` does) and stop.

    ``parameters`` are the task's, with every ``{{ steps.<key>.<path> }}``
    reference replaced by that earlier step's result (resolved on first read;
    see ``automation.services.step_outputs``). A reference that cannot be
    resolved raises InvalidInput there, which fails the attempt for good.
    """

    def __init__(self, *, task: Task, run: TaskRun, worker: str = "") -> None:
        self.task = task
        self.run = run
        self.worker = worker
        self.attempt = run.attempt
        self._given_parameters: dict[str, Any] = dict(task.parameters or {})
        self._parameters: dict[str, Any] | None = None
        self.lease_lost = threading.Event()
        self.effects: list[Effect] = []
        self._log: list[str] = []

    @property
    def parameters(self) -> dict[str, Any]:
        if self._parameters is None:
            from automation.services.step_outputs import resolve_step_outputs

            self._parameters = resolve_step_outputs(self.task, self._given_parameters)
        return self._parameters

    @parameters.setter
    def parameters(self, value: dict[str, Any]) -> None:
        self._parameters = value

    @property
    def organization_id(self) -> int:
        return self.task.organization_id

    def log(self, line: str) -> None:
        """Append a line to the attempt's captured log."""
        self._log.append(str(line))

    @property
    def log_text(self) -> str:
        return "\n".join(self._log)

    def emit(self, key: str, kind: str, payload: dict[str, Any] | None = None) -> None:
        """Ask for a side effect; it is recorded (once) when the attempt's outcome is saved."""
        self.effects.append(Effect(key=key, kind=kind, payload=dict(payload or {})))

    def sleep(self, seconds: float) -> bool:
        """Wait up to ``seconds``; return False early if the lease was lost."""
        deadline = time.monotonic() + max(0.0, seconds)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            if self.lease_lost.wait(min(left, 0.5)):
                return False


@runtime_checkable
class Executor(Protocol):
    """A way of doing a task's work, registered under a name.

    ``validate`` checks and normalizes parameters when a task is created (raise
    ``accounts.errors.InvalidInput`` naming the field). ``breaker_key`` names
    the circuit the task's failures count against (the executor's name, or an
    integration such as ``"tool:send_email"``). ``execute`` does one attempt:
    return an ExecutionResult or raise (an exception is a retryable failure).
    """

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]: ...

    def breaker_key(self, name: str, parameters: dict[str, Any]) -> str: ...

    def execute(self, context: ExecutionContext) -> ExecutionResult: ...


class BaseExecutor:
    """Defaults for the optional parts of :class:`Executor`."""

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        return parameters

    def breaker_key(self, name: str, parameters: dict[str, Any]) -> str:
        return name

    def execute(self, context: ExecutionContext) -> ExecutionResult:
        raise NotImplementedError
