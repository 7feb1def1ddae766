"""The state of a request's run as the chat shows it, folded from its TaskEvents.

The page's script applies the same rules to each event that arrives (static/chat.js, ``applyEvent``); a
page rendered after a reload starts from :func:`runs_of_thread` and so shows the same panel word for word.

A run panel holds: the plan as a checklist (each step with its status), the progress (steps done of all,
minutes estimated for the rest), the iteration of the step at work ("Iteration 2/3: revising after
review"), who is thinking ("Manager is planning…"), what it waits for, and the model cost so far.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from agents import conf
from agents.chat_stream import Cursor, TaskPlace, thread_task_places
from agents.models import Thread
from automation.models import Task, TaskEvent

TERMINAL = ("completed", "failed", "cancelled", "skipped")
ACTIVE = ("pending", "queued", "in_progress", "paused", "blocked")
STATUS_LABELS = {
    "pending": "Pending", "queued": "Queued", "in_progress": "In progress", "paused": "Paused", "blocked": "Waiting",
    "completed": "Done", "failed": "Failed", "cancelled": "Cancelled", "skipped": "Skipped",
}
ROLE_LABELS = {"manager": "Manager", "employee": "Employee", "supervisor": "Supervisor"}


@dataclass
class StepState:
    id: str
    title: str
    status: str = "pending"
    task: int | None = None
    estimate: float = 0.0
    needs_approval: bool = False
    human: bool = False
    revision: int = 0

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


@dataclass
class RunState:
    root: int
    title: str
    status: str = "pending"
    plan_version: int = 0
    steps: list[StepState] = field(default_factory=list)
    thinking_role: str = ""
    thinking: str = ""
    waiting: str = ""
    iteration: str = ""
    current_step: str = ""
    phase: str = ""
    revision: int = 0
    revisions_of: int = 3
    cost: str = "0"
    currency: str = "USD"
    cost_final: bool = False

    # --- derived -----------------------------------------------------------------------------

    @property
    def done(self) -> int:
        return sum(1 for s in self.steps if s.status == "completed")

    @property
    def total(self) -> int:
        return len(self.steps)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else (100 if self.status == "completed" else 0)

    @property
    def minutes_left(self) -> float:
        return sum(s.estimate for s in self.steps if s.status not in TERMINAL)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def progress_text(self) -> str:
        """``2 of 3 steps done · about 5 min left`` (the page's script writes the same)."""
        if not self.total:
            return "Planning" if not self.finished else self.status_label
        text = f"{self.done} of {self.total} steps done"
        left = self.minutes_left
        if left > 0 and not self.finished:
            text += f" · about {max(1, round(left))} min left"
        return text

    @property
    def cost_text(self) -> str:
        return f"Cost so far: {show_money(self.cost)} {self.currency}"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    # --- the fold --------------------------------------------------------------------------------

    def step(self, step_id: str) -> StepState | None:
        for step in self.steps:
            if step.id == step_id:
                return step
        return None

    def think(self, role: str, text: str) -> None:
        self.thinking_role, self.thinking = role, text

    def apply(self, event_type: str, payload: dict[str, Any], *, task: int, step_id: str) -> None:
        """Fold one event of this run (the request's or one of its steps') into the state."""
        p = payload if isinstance(payload, dict) else {}
        step_id = str(p.get("step") or step_id or "")
        llm = p.get("llm")
        if isinstance(llm, dict) and not self.cost_final:
            self.cost = _add(self.cost, llm.get("cost"))
            self.currency = str(llm.get("currency") or self.currency)
        step = self.step(step_id) if step_id else None
        title = f"“{step.title}”" if step is not None else "the step"
        is_root = task == self.root
        if event_type == "created" and is_root and not self.steps:
            self.think("manager", "Manager is planning…")
        elif event_type == "status_changed":
            to = str(p.get("to") or "")
            if is_root and not step_id:
                self.status = to
                if to in TERMINAL:
                    self.think("", "")
                    self.waiting = ""
                elif to == "in_progress" and not self.steps:
                    self.think("manager", "Manager is planning…")
            elif step is not None:
                step.task = task
                if step.status != "completed" or to in TERMINAL:
                    step.status = to
        elif event_type in ("agent.plan", "agent.plan_edited"):
            steps = p.get("steps") if isinstance(p.get("steps"), list) else []
            self.plan_version = int(p.get("version") or self.plan_version + 1)
            self.steps = [StepState(id=str(s.get("id", "")), title=str(s.get("title", s.get("id", ""))),
                                    estimate=_number(s.get("estimate_minutes")),
                                    needs_approval=bool(s.get("needs_approval")), human=s.get("role") == "human")
                          for s in steps if isinstance(s, dict)]
            self.think("", "")
        elif event_type in ("agent.plan_invalid", "agent.plan_blocked", "agent.plan_failed"):
            self.think("", "")
        elif event_type == "agent.plan_approval_requested":
            self.waiting = f"Waiting for approval of plan v{p.get('version') or self.plan_version}"
            self.think("", "")
        elif event_type == "agent.plan_approved":
            self.waiting = ""
            self.think("manager", "Manager is starting the steps…")
        elif event_type == "agent.steps_started":
            subtasks = p.get("subtasks") if isinstance(p.get("subtasks"), dict) else {}
            for sid, tid in subtasks.items():
                found = self.step(str(sid))
                if found is not None and isinstance(tid, int):
                    found.task = tid
            self.think("", "")
        elif event_type == "agent.replan":
            self.think("manager", "Manager is re-planning…")
        elif event_type == "agent.step_started":
            revision = int(p.get("revision") or 1)
            if step is not None:
                step.status, step.revision = "in_progress", revision
            self.current_step, self.revision = step_id, revision
            self.phase = "revising after review" if revision > 1 else "working"
            self.think("employee", f"Employee is {'revising' if revision > 1 else 'working on'} {title}…")
        elif event_type == "agent.iteration":
            calls = p.get("tool_calls") if isinstance(p.get("tool_calls"), list) else []
            if calls:
                self.think("employee", f"Employee is calling {', '.join(str(c) for c in calls)}…")
            else:
                self.think("employee", "Employee is writing the report…")
        elif event_type == "agent.step_output":
            self.current_step = step_id or self.current_step
            self.phase = "in review"
            self.think("supervisor", f"Supervisor is reviewing {title}…")
        elif event_type == "agent.verdict":
            verdict = str(p.get("verdict") or "")
            self.phase = {"accept": "accepted", "revise": "sent back for revision",
                          "escalate": "escalated to a person"}.get(verdict, verdict)
            self.think("", "")
        elif event_type == "agent.revision":
            self.revision = int(p.get("revision") or self.revision + 1)
            self.revisions_of = int(p.get("of") or self.revisions_of)
            self.current_step = step_id or self.current_step
            self.phase = "revising after review"
            if step is not None:
                step.revision = self.revision
            self.think("employee", f"Employee is revising {title}…")
        elif event_type == "agent.approval_requested":
            self.waiting = f"Waiting for approval of {title}" if step is not None else "Waiting for an approval"
            self.think("", "")
        elif event_type in ("agent.approved", "agent.approval_refused"):
            self.waiting = ""
        elif event_type == "agent.step_completed":
            if step is not None:
                step.status = "completed"
            self.think("", "")
        elif event_type == "agent.clarification_requested":
            self.waiting = "Waiting for your answer"
            self.think("", "")
        elif event_type == "agent.clarification_answered":
            self.waiting = ""
        elif event_type == "agent.summary":
            self.think("", "")
        elif event_type == "agent.cost" and p.get("llm_cost") is not None:
            self.cost = _add("0", p.get("llm_cost"))
            self.cost_final = True
        if self.revision:
            suffix = f": {self.phase}" if self.phase and self.phase != "working" else ""
            self.iteration = f"Iteration {self.revision}/{self.revisions_of}{suffix}"


def show_money(value: Any) -> str:
    """At most six decimals, no trailing zeros (the page's script shows money the same way)."""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return "0"
    return format(amount.normalize(), "f") if amount else "0"


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _add(total: str, value: Any) -> str:
    try:
        result = Decimal(str(total)) + Decimal(str(value if value is not None else 0))
    except (InvalidOperation, ValueError):
        return total
    return format(result.normalize(), "f") if result else "0"


def fold(root: Task, events: list[tuple[TaskEvent, TaskPlace]]) -> RunState:
    """The run of ``root`` after ``events`` (its own and its steps', in commit order)."""
    state = RunState(root=root.pk, title=root.title, revisions_of=conf.max_revisions())
    for event, place in events:
        state.apply(event.type, event.payload or {}, task=event.task_id, step_id=place.step)
    return state


@dataclass
class ThreadRuns:
    runs: list[RunState]
    cursor: Cursor


def runs_of_thread(thread: Thread) -> ThreadRuns:
    """Every run the thread started, folded from all their events, and the event cursor they stand at."""
    places = thread_task_places(thread)
    if not places:
        return ThreadRuns(runs=[], cursor=Cursor())
    organization = thread.organization
    roots = {p.root_id for p in places.values()}
    root_rows = {t.pk: t for t in Task.objects.for_org(organization).filter(pk__in=roots)}
    events = list(TaskEvent.objects.for_org(organization).filter(task_id__in=list(places))
                  .order_by("created_at", "id"))
    cursor = Cursor()
    by_root: dict[int, list[tuple[TaskEvent, TaskPlace]]] = {r: [] for r in roots}
    for event in events:
        place = places[event.task_id]
        by_root[place.root_id].append((event, place))
        cursor.tasks[event.task_id] = max(cursor.tasks.get(event.task_id, 0), event.sequence)
    runs = [fold(root_rows[r], by_root[r]) for r in sorted(roots) if r in root_rows]
    return ThreadRuns(runs=runs, cursor=cursor)
