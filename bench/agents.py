"""Benchmark of the AI workforce's own cost. Prints figures, asserts nothing.

1. Framework overhead per agent step with a zero-latency model. A plan of ``--steps`` independent steps (each:
   the Employee calls one tool, reports; the Supervisor accepts) runs through the real loop in this process: the
   engine claims each step task, the Employee's state is saved in AgentWork, the tool goes through invoke_tool
   (ToolCall and audit rows), every stage is a TaskEvent and a thread message, the outcome is recorded. The
   same plan then runs as bare function calls (model stub → tool handler → model stub → review stub). Figures:
   ms per step (p50, p95) and the rows written per step, for two zero-latency models:
   - "stub": an instant function in place of the gateway (the framework alone);
   - "scripted": the gateway with the offline scripted LiteLLM provider (adds routing, rate limit and budget
     checks, LLMCall rows and LiteLLM's own work; the model itself answers at once).
2. Time from a user message to the first streamed event. A Celery worker (``--concurrency`` processes) handles
   the onboarding request posted to a new thread; this process listens on the organization's channel-layer group
   and records the first item after the user's own message (an ``agents.message`` or a ``task.event``), and the
   Manager's plan. p50, p95 over ``--messages`` messages (after one warm-up message).

Runs in a throwaway database (``bench_agents``, or ``STAFFER_BENCH_DB``) and the Redis databases at
``STAFFER_REDIS_DB_BASE`` (default 20: pick one no other run uses).

    .venv/bin/python bench/agents.py [--steps 20] [--requests 3] [--messages 10] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("STAFFER_REDIS_DB_BASE", "20")
os.environ.setdefault("LOG_LEVEL", "WARNING")
BENCH_DB = os.environ.get("STAFFER_BENCH_DB", "bench_agents")
REQUEST = "Run the bench plan"
ONBOARD = "Onboard Maria Lopez as QA engineer starting 1 March, reporting to Dana"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def figures(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"p50 {percentile(values, 0.5):8.2f}  p95 {percentile(values, 0.95):8.2f}  "
            f"mean {statistics.fmean(values):8.2f}  (n={len(values)})")


# --- the zero-latency models ---------------------------------------------------------------------


def plan_steps(count: int) -> list[dict[str, Any]]:
    return [{"id": f"s{i}", "title": f"Step {i}", "depends_on": [], "role": "employee", "tools": ["bench_note"],
             "success_criteria": [f"step {i} noted"], "estimate_minutes": 1, "needs_approval": False}
            for i in range(1, count + 1)]


def stub_model(steps: int) -> Any:
    """An instant stand-in for the gateway: the plan, one tool call then a report per step, accept."""
    from decimal import Decimal

    from agents.llm.types import LLMResult, ToolCall, Usage

    def answer(content: str = "", parsed: Any = None, calls: list[ToolCall] | None = None) -> LLMResult:
        return LLMResult(content=content, tool_calls=calls or [], parsed=parsed, model="stub", deployment="stub",
                         tier="worker", locality="cloud", usage=Usage(100, 20), cost=Decimal(0), currency="USD",
                         latency_ms=0, ttft_ms=None, outcome="ok", scripted=False)

    def complete(**kw: Any) -> LLMResult:
        role = kw["role"]
        if role == "manager" and kw.get("purpose") == "plan":
            return answer(parsed={"summary": "bench", "strategy": "decompose", "steps": plan_steps(steps)})
        if role == "manager":
            return answer("done")
        if role == "supervisor":
            return answer(parsed={"verdict": "accept", "feedback": "ok", "criteria_met": True})
        if any(m.get("role") == "tool" for m in kw["messages"]):
            return answer(f"{kw['step_key']} done")
        return answer(calls=[ToolCall(id="c1", name="bench_note", arguments={"text": kw["step_key"]},
                                      raw_arguments='{"text": "x"}')])

    return complete


def bench_scenarios(steps: int) -> dict[str, Any]:
    """The scripted model's scenarios plus one answering the bench plan (same shape as the stub)."""
    from agents.llm import scenarios

    data = {
        "name": "bench", "priority": 100, "match": {"any": ["bench plan"]},
        "responses": [
            {"role": "classifier", "content": {"intent": "complex_task", "confidence": 1.0}},
            {"role": "manager", "step": "plan", "content": {"summary": "bench", "strategy": "decompose",
                                                            "steps": plan_steps(steps)}},
            {"role": "manager", "step": "summary", "content": "done"},
            {"role": "employee", "turn": 1, "tool_calls": [{"name": "bench_note", "arguments": {"text": "x"}}]},
            {"role": "employee", "turn": 2, "content": "done: {{tool_result}}"},
            {"role": "supervisor", "content": {"verdict": "accept", "feedback": "ok", "criteria_met": True}},
        ],
    }
    loaded = dict(scenarios.load_scenarios())
    loaded["bench"] = scenarios.parse_scenario(data, "bench")
    return loaded


def register_bench_tool() -> Any:
    from tools.registry import Tool, register_tool
    from tools.types import SideEffect

    def note(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
        return {"noted": args.get("text", "")}

    return register_tool(Tool(
        name="bench_note", description="Note a text (benchmark tool).", side_effect=SideEffect.READ,
        parameters={"type": "object", "properties": {"text": {"type": "string"}}, "additionalProperties": False},
        handler=note,
    ), replace=True)


# --- part 1: overhead per step ------------------------------------------------------------------------


def run_plan(org: Any, member: Any, steps: int) -> tuple[list[float], int, int]:
    """One request of ``steps`` steps through the loop in this process; ms per step (claim → recorded).

    The request reports to a thread, as a chat request does (each stage is also a message there).
    """
    from agents.loop.manager import ai_task_execute
    from agents.services.conversations import thread_create
    from automation.models import Task, TaskEvent, TaskRun
    from automation.services import runner
    from automation.services.tasks import task_create

    thread = thread_create(organization=org, user=member)
    task = task_create(organization=org, actor=member, title=REQUEST, source="chat", execution_type="semi_automated",
                       executor="ai", parameters={"request": REQUEST, "approve_plan": False, "thread": thread.pk})
    ai_task_execute(task=task, actor=member)
    per_step: list[float] = []
    for _ in range(steps * 3 + 10):
        due = Task.objects.for_org(org).filter(status="queued").order_by("pk").first()
        if due is None:
            break
        before = TaskRun.objects.for_org(org).order_by("-id").values_list("id", flat=True).first() or 0
        started = time.perf_counter()
        runner.process(organization_id=org.pk, task_id=due.pk, worker="bench")
        elapsed = (time.perf_counter() - started) * 1000
        run = TaskRun.objects.for_org(org).filter(id__gt=before).select_related("task").first()
        if run is not None and run.task.parent_id == task.pk:
            per_step.append(elapsed)
    task.refresh_from_db()
    if task.status != "completed":
        print(f"  (request {task.pk} ended {task.status}: {task.failure_reason or task.blocked_reason})")
    children = list(Task.objects.for_org(org).filter(parent=task).values_list("pk", flat=True))
    events = TaskEvent.objects.for_org(org).filter(task_id__in=children).count()
    from agents.models import Message

    messages = Message.objects.for_org(org).filter(task_id__in=children).count()
    return per_step, events, messages


def bare_plan(steps: int, complete: Any, tool: Any) -> list[float]:
    """The same plan as bare function calls: model, tool handler, model, review."""
    times = []
    for step in plan_steps(steps):
        started = time.perf_counter()
        messages = [{"role": "user", "content": REQUEST}]
        first = complete(role="employee", messages=messages, step_key=step["id"])
        call = first.tool_calls[0]
        output = tool.handler(None, call.arguments)
        messages = [*messages, first.assistant_message(), {"role": "tool", "content": str(output)}]
        report = complete(role="employee", messages=messages, step_key=step["id"])
        verdict = complete(role="supervisor", messages=[{"role": "user", "content": report.content}],
                           step_key=step["id"])
        assert verdict.parsed["verdict"] == "accept"
        times.append((time.perf_counter() - started) * 1000)
    return times


def part_one(org: Any, member: Any, args: argparse.Namespace) -> None:
    from unittest import mock

    from agents.llm import scenarios
    from agents.loop import runtime
    from automation.services import dispatch

    tool = register_bench_tool()
    print(f"\n1. Framework overhead per agent step (zero-latency model; {args.requests} requests × {args.steps} steps, "
          "after one warm-up request)")
    stub = stub_model(args.steps)
    loaded = bench_scenarios(args.steps)

    def no_publish(**kwargs: Any) -> None:
        return None

    def with_bench_scenario(*args: Any) -> dict[str, Any]:
        return loaded

    with mock.patch.object(dispatch, "publish_run", no_publish):
        for label, patches in (
            ("stub (framework only)", [mock.patch.object(runtime, "complete", stub)]),
            ("scripted (gateway + LiteLLM)", [mock.patch.object(scenarios, "load_scenarios", with_bench_scenario)]),
        ):
            for patch in patches:
                patch.start()
            try:
                run_plan(org, member, args.steps)  # warm-up: imports, caches, LiteLLM's router
                samples: list[float] = []
                events = messages = 0
                for _ in range(args.requests):
                    per_step, e, m = run_plan(org, member, args.steps)
                    samples += per_step
                    events += e
                    messages += m
            finally:
                for patch in patches:
                    patch.stop()
            count = max(1, args.requests * args.steps)
            print(f"  loop, {label:30} ms/step {figures(samples)}")
            print(f"  {'':36} rows per step: {events / count:.1f} TaskEvents, {messages / count:.1f} messages")
    bare = []
    for _ in range(args.requests):
        bare += bare_plan(args.steps, stub, tool)
    print(f"  bare function calls, {'stub':21} ms/step {figures(bare)}")


# --- part 2: user message → first streamed event -------------------------------------------------------


class Worker:
    def __init__(self, database: str, concurrency: int) -> None:
        self.hostname = f"bench-agents-{os.getpid()}@bench"
        self.argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-n", self.hostname, "-c",
                     str(concurrency), "-P", "prefork", "-l", "WARNING", "--without-gossip", "--without-mingle",
                     "-Q", "celery"]
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "STAFFER_DB_NAME": database,
                    "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from config import heartbeat

        log = (ROOT / "var" / "bench-agents-worker.log").open("ab")
        self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + 180
        while self.hostname not in heartbeat.live_workers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("bench worker did not start; see var/bench-agents-worker.log")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


class Listener:
    """Records when items of the organization's socket group arrive (a thread with its own event loop)."""

    def __init__(self, organization_id: int) -> None:
        self.organization_id = organization_id
        self.items: list[tuple[float, dict[str, Any]]] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._listen())

    async def _listen(self) -> None:
        from channels.layers import get_channel_layer

        from accounts.consumers import org_group

        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(org_group(self.organization_id), channel)
        self.ready.set()
        while not self.stop.is_set():
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
            except TimeoutError:
                continue
            self.items.append((time.perf_counter(), message))

    def first_after(self, thread_id: int, since: float, *, task_ids: set[int]) -> float | None:
        for at, message in self.items:
            if at < since:
                continue
            data, kind = message.get("data", {}), message.get("event")
            if kind == "agents.message" and data.get("thread") == thread_id and data.get("role") != "user":
                return at
            if kind == "task.event" and data.get("task") in task_ids:
                return at
        return None


def part_two(org: Any, member: Any, args: argparse.Namespace) -> None:
    from agents.models import Message
    from agents.services.conversations import message_post, thread_create
    from automation.models import Task, TaskEvent
    from tests.support.worker import purge_broker

    print(f"\n2. User message → first streamed event (worker: 1 × prefork {args.concurrency}; the onboarding request; "
          "after one warm-up message)")
    purge_broker()
    worker = Worker(BENCH_DB, args.concurrency)
    worker.start()
    listener = Listener(org.pk)
    listener.thread.start()
    listener.ready.wait(10)
    first: list[float] = []
    plan: list[float] = []
    try:
        for index in range(args.messages + 1):
            thread = thread_create(organization=org, user=member)
            started = time.perf_counter()
            posted = message_post(thread=thread, user=member, content=ONBOARD)
            deadline = time.monotonic() + 300
            seen_first = seen_plan = None
            while time.monotonic() < deadline and (seen_first is None or seen_plan is None):
                time.sleep(0.01)
                tasks = set(Task.objects.for_org(org).filter(parameters__thread=thread.pk).values_list("pk", flat=True))
                seen_first = seen_first or listener.first_after(thread.pk, started, task_ids=tasks)
                if seen_plan is None and tasks:
                    planned = TaskEvent.objects.for_org(org).filter(task_id__in=tasks, type="agent.plan").first()
                    if planned is not None:
                        seen_plan = time.perf_counter()
            if index == 0:
                continue  # warm-up: the worker loads LiteLLM and the embedding model
            if seen_first is not None:
                first.append((seen_first - started) * 1000)
            if seen_plan is not None:
                plan.append((seen_plan - started) * 1000)
            replies = Message.objects.for_org(org).filter(thread=thread).exclude(pk=posted.pk).count()
            if not replies:
                print("  (no reply in 300 s)")
    finally:
        listener.stop.set()
        worker.stop()
    print(f"  first streamed item after the message  ms {figures(first)}")
    print(f"  the Manager's plan recorded            ms {figures(plan)}  (polled every 10 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--skip-stream", action="store_true", help="Only part 1 (no worker).")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from accounts.models import Membership, Organization, User
    from accounts.roles import Role
    from agents.models import OrganizationLLMSettings
    from tools.models import InternalDomain

    settings.DATABASES["default"]["TEST"]["NAME"] = BENCH_DB
    original = connection.settings_dict["NAME"]
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)
    settings.MEDIA_ROOT = str(ROOT / "var" / "bench-agents-media")
    print(f"database {name}; Redis databases from {settings.REDIS.base}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}")
    try:
        org = Organization.objects.create(slug="bench", name="Bench Corp")
        member = User.objects.create(email="member@bench.test", full_name="Bench Member")
        Membership.objects.for_org(org).create(organization=org, user=member, role=Role.MEMBER)
        OrganizationLLMSettings.objects.for_org(org).create(organization=org, calls_per_hour_per_user=1_000_000)
        InternalDomain.objects.for_org(org).create(organization=org, domain="demo.staffer.local")
        part_one(org, member, args)
        if not args.skip_stream:
            part_two(org, member, args)
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)


if __name__ == "__main__":
    main()
