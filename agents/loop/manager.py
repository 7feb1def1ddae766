"""The Manager: plans a request, has the plan approved, starts its steps, re-plans stalls, and sums up.

A request task (executor ``ai``) goes through :func:`run_request` on a worker
each time it runs: it plans (once per version), waits for the plan's approval
when the task is semi-automated, then either does the single step itself
(strategy ``immediate``) or creates one subtask per step with the plan's
dependencies (``decompose``) and parks until they have all ended. When every
step completed it writes the summary and completes; when steps failed it
re-plans the rest (at most ``AGENTS_MAX_REPLANS`` times), then fails with a
summary of what was done and what was not.

:func:`ai_task_execute` is the same decision taken at once, for the task
"execute" endpoint and the chat: it answers with the strategy.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.errors import InvalidInput, ServiceError
from accounts.models import ApprovalRequest, ApprovalStatus, User
from accounts.roles import Scope
from accounts.services.approvals import approval_request_create, approval_void
from agents import conf, prompts
from agents.loop.employee import run_step
from agents.loop.plans import PLAN_SCHEMA, PlanCheck, plan_check, step_estimate_minutes
from agents.loop.runtime import Context, Outcome, approval_of, requester_label
from agents.models import AgentWork, LLMCall, MessageRole, Plan, PlanStatus, Strategy, Thread, Waiting, WorkKind
from agents.services.memory_context import memory_block_for
from automation.models import ExecutionType, Task, TaskSource, TaskStatus

PLAN_APPROVAL_KIND = "plan"
PLAN_SUBJECT = "agents.plan"
EXECUTOR = "ai"
S = TaskStatus
ACTIVE = frozenset({S.PENDING, S.QUEUED, S.IN_PROGRESS, S.PAUSED, S.BLOCKED})


class ManagerQuestion(Exception):
    """The Manager cannot plan without an answer from the requester."""

    def __init__(self, question: str, result: Any = None) -> None:
        super().__init__(question)
        self.question = question
        self.result = result


# --- the work row ---------------------------------------------------------------------------


def work_for_request(task: Task, *, requester: User | None = None, thread: Thread | None = None,
                     scenario: str = "") -> AgentWork:
    """The request's working state (created on first use)."""
    work = AgentWork.objects.for_org(task.organization).filter(task=task).select_related("task", "root").first()
    if work is not None:
        return work
    parameters = task.parameters or {}
    if thread is None and parameters.get("thread"):
        thread = Thread.objects.for_org(task.organization).filter(pk=parameters["thread"]).first()
    work, _ = AgentWork.objects.for_org(task.organization).get_or_create(
        task=task,
        defaults={"organization": task.organization, "kind": WorkKind.REQUEST, "root": task, "thread": thread,
                  "requester": requester or task.created_by or task.assignee_user,
                  "scenario": scenario or str(parameters.get("scenario") or "")[:100]},
    )
    return AgentWork.objects.for_org(task.organization).select_related("task", "root").get(pk=work.pk)


def current_plan(work: AgentWork) -> Plan | None:
    return Plan.objects.for_org(work.organization).filter(task_id=work.root_id).order_by("-version").first()


def plan_text(plan: Plan) -> str:
    """The plan as people read it in the conversation."""
    lines = [f"Plan v{plan.version}: {plan.summary}" if plan.summary else f"Plan v{plan.version}:"]
    index = {s["id"]: n for n, s in enumerate(plan.steps, start=1)}
    for number, step in enumerate(plan.steps, start=1):
        extras = []
        if step.get("tools"):
            extras.append(", ".join(step["tools"]))
        if step.get("role") == "human":
            extras.append("a person does this")
        if step.get("needs_approval"):
            extras.append("needs approval" + (f" by {step['approver']}" if step.get("approver") else ""))
        after = [str(index[d]) for d in step.get("depends_on", []) if d in index]
        text = f"{number}. {step['title']}"
        if extras:
            text += f" [{'; '.join(extras)}]"
        if after:
            text += f" (after {', '.join(after)})"
        lines.append(text)
    if plan.steps:
        lines.append(f"Estimated: {step_estimate_minutes(plan.steps):g} minutes of work.")
    if plan.needs:
        lines.append("Needs: " + "; ".join(plan.needs))
    return "\n".join(lines)


def plan_json(plan: Plan) -> dict[str, Any]:
    return {"id": plan.pk, "version": plan.version, "status": plan.status, "strategy": plan.strategy,
            "summary": plan.summary, "steps": plan.steps, "needs": plan.needs, "problems": plan.problems,
            "approval": plan.approval_id}


# --- planning ----------------------------------------------------------------------------------


def _request_text(task: Task) -> str:
    parameters = task.parameters or {}
    return str(parameters.get("request") or "\n\n".join(p for p in (task.title, task.description) if p))


def _tool_catalogue(ctx: Context) -> str:
    from agents.loop.plans import tool_access
    from tools.registry import registry

    access = tool_access(ctx.organization, ctx.requester)
    lines = [f"- {t.name}: {t.description}" for t in registry.all() if access.get(t.name) == ""]
    return "\n" + "\n".join(lines) if lines else " none"


def _planning_messages(ctx: Context, *, feedback: str, answers: list[dict[str, str]]) -> list[dict[str, Any]]:
    organization = ctx.organization
    request = _request_text(ctx.task)
    system = prompts.fill(
        prompts.MANAGER, organization=organization.name, today=timezone.localdate().isoformat(),
        timezone=organization.timezone, requester=requester_label(ctx.requester), tools=_tool_catalogue(ctx),
    )
    context = ["What the business knows that may matter:\n" + memory_block_for(organization=organization,
                                                                                  query=request)]
    if feedback:
        context.append(feedback)
    context.append("Plan this request. Answer with the JSON plan only. If you cannot plan it without an answer "
                   'from the requester, answer {"summary": "", "strategy": "decompose", "steps": [], '
                   '"question": "<one precise question>"} instead.')
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": request},
        {"role": "user", "content": "\n\n".join(context)},
    ]
    for answer in answers:  # the requester's own words: a turn of theirs, after the question they answer
        messages += [{"role": "assistant", "content": answer["question"]},
                     {"role": "user", "content": answer["answer"]}]
    return messages


def manager_plan(ctx: Context, *, feedback: str = "") -> Plan:
    """Ask the planner for a plan, check it (one repair when invalid), store it as the next version.

    Model failures are raised (a :class:`ServiceError`) after being recorded.
    """
    answers = [a for a in (ctx.work.step or {}).get("answers", []) if isinstance(a, dict)]
    messages = _planning_messages(ctx, feedback=feedback, answers=answers)
    result = None
    check: PlanCheck | None = None
    for attempt in (1, 2):
        try:
            result = ctx.ask(role="manager", messages=messages, purpose="plan", step_key="plan",
                             attempt=ctx.work.replans + 1, response_schema=PLAN_SCHEMA, task_type="plan")
        except ServiceError as exc:
            if not isinstance(exc, (InvalidInput,)):
                ctx.record("plan_failed", role=MessageRole.SYSTEM,
                           text=f"The Manager could not make a plan: {exc.message}", payload={"code": exc.code})
            raise
        question = str((result.parsed or {}).get("question") or "").strip()
        if question and not (result.parsed or {}).get("steps"):
            raise ManagerQuestion(question, result)
        check = plan_check(result.parsed, organization=ctx.organization, requester=ctx.requester)
        if not check.invalid or attempt == 2:
            break
        ctx.record("plan_invalid", role=MessageRole.MANAGER, result=result, mirror=False,
                   payload={"problems": [p.as_dict() for p in check.problems], "repair": True})
        messages = [*messages, {"role": "assistant", "content": result.content},
                    {"role": "user", "content": "That plan cannot be used: " + check.describe()
                     + ". Fix these problems and answer with the corrected JSON plan only."}]
    assert check is not None
    assert result is not None
    if check.invalid:
        status = PlanStatus.INVALID
    elif check.blocked:
        status = PlanStatus.BLOCKED
    else:
        status = PlanStatus.PROPOSED
    with transaction.atomic():
        previous = current_plan(ctx.work)
        version = (previous.version + 1) if previous else 1
        if previous is not None and previous.status not in (PlanStatus.INVALID, PlanStatus.REJECTED):
            Plan.objects.for_org(ctx.organization).filter(pk=previous.pk).update(status=PlanStatus.SUPERSEDED)
        plan = Plan.objects.for_org(ctx.organization).create(
            organization=ctx.organization, task_id=ctx.root_id, version=version, status=status,
            strategy=Strategy.BLOCKED if status == PlanStatus.BLOCKED else check.strategy, summary=check.summary,
            steps=check.steps, needs=check.needs, problems=[p.as_dict() for p in check.problems],
            author_label="manager", llm_call_id=result.call_id, scripted=result.scripted,
        )
        _record_plan(ctx, plan, result=result)
    return plan


def _record_plan(ctx: Context, plan: Plan, *, result: Any = None) -> None:
    payload = {"plan": plan.pk, "version": plan.version, "status": plan.status, "strategy": plan.strategy,
               "steps": plan.steps, "needs": plan.needs, "problems": plan.problems}
    if plan.status == PlanStatus.INVALID:
        problems = "; ".join(p["message"] for p in plan.problems)
        ctx.record("plan_invalid", role=MessageRole.MANAGER, result=result, payload=payload,
                   text=f"I could not make a usable plan: {problems}.")
    elif plan.status == PlanStatus.BLOCKED:
        ctx.record("plan_blocked", role=MessageRole.MANAGER, result=result, payload=payload,
                   text=f"I cannot do this yet. It needs: {'; '.join(plan.needs)}.")
    else:
        ctx.record("plan", role=MessageRole.MANAGER, result=result, payload=payload, text=plan_text(plan))


def needs_plan_approval(task: Task) -> bool:
    """Semi-automated work shows its plan for approval first (unless created with ``approve_plan: false``)."""
    return task.execution_type == ExecutionType.SEMI_AUTOMATED and (task.parameters or {}).get("approve_plan", True)


def request_plan_approval(ctx: Context, plan: Plan) -> ApprovalRequest:
    """Ask a person (approvals:decide) to approve this plan version; idempotent per version."""
    if plan.approval_id is not None:
        existing = approval_of(ctx.organization, plan.approval_id)
        if existing is not None and existing.status == ApprovalStatus.PENDING:
            return existing
    approval = approval_request_create(
        organization=ctx.organization, kind=PLAN_APPROVAL_KIND, subject_type=PLAN_SUBJECT, subject_id=str(plan.pk),
        title=f"Approve the plan for {ctx.task.title}"[:200], reason=plan_text(plan),
        requested_by=ctx.requester, requested_by_label=f"manager of task #{ctx.root_id}",
        arguments={"task": ctx.root_id, "plan": plan.pk, "version": plan.version, "steps": plan.steps},
        required_scope=Scope.APPROVALS_DECIDE,
    )
    Plan.objects.for_org(ctx.organization).filter(pk=plan.pk).update(
        status=PlanStatus.AWAITING_APPROVAL, approval=approval)
    plan.status, plan.approval = PlanStatus.AWAITING_APPROVAL, approval
    ctx.work.waiting_for = Waiting.PLAN_APPROVAL
    ctx.work.waiting = {"approval": approval.pk, "plan": plan.pk}
    ctx.save("waiting_for", "waiting")
    ctx.record("plan_approval_requested", role=MessageRole.SYSTEM,
               text=f"Nothing runs until the plan is approved: approval #{approval.pk} (approve, edit or reject it).",
               payload={"approval": approval.pk, "plan": plan.pk, "version": plan.version, "kind": "plan"})
    return approval


def _plan_gate(ctx: Context, plan: Plan) -> Outcome | None:
    """None when the plan may run; else why the request waits or stops."""
    if plan.status == PlanStatus.APPROVED or not needs_plan_approval(ctx.task):
        return None
    if plan.status == PlanStatus.PROPOSED:
        approval = request_plan_approval(ctx, plan)
        return Outcome.parked(f"waiting for approval #{approval.pk} of the plan")
    approval = approval_of(ctx.organization, plan.approval_id)
    if plan.status == PlanStatus.AWAITING_APPROVAL and approval is not None:
        if approval.status == ApprovalStatus.PENDING:
            return Outcome.parked(f"waiting for approval #{approval.pk} of the plan")
        if approval.status == ApprovalStatus.APPROVED:
            mark_plan_approved(ctx, plan, approval)
            return None
    reason = (f"the plan was {approval.status}: {approval.decision_reason or 'no reason given'}"
              if approval is not None else "the plan was not approved")
    Plan.objects.for_org(ctx.organization).filter(pk=plan.pk).update(status=PlanStatus.REJECTED)
    return Outcome.failed(reason[0].upper() + reason[1:])


def mark_plan_approved(ctx: Context, plan: Plan, approval: ApprovalRequest) -> None:
    updated = Plan.objects.for_org(ctx.organization).filter(
        pk=plan.pk, status=PlanStatus.AWAITING_APPROVAL).update(status=PlanStatus.APPROVED)
    plan.status = PlanStatus.APPROVED
    if ctx.work.waiting_for == Waiting.PLAN_APPROVAL:
        ctx.clear_waiting()
    if updated:
        decider = approval.decided_by.email if approval.decided_by else "someone"
        ctx.record("plan_approved", role=MessageRole.SYSTEM,
                   text=f"{decider} approved plan v{plan.version} (approval #{approval.pk}); the work starts.",
                   payload={"approval": approval.pk, "plan": plan.pk, "version": plan.version})


# --- steps ------------------------------------------------------------------------------------


def step_works(ctx: Context, plan: Plan) -> list[AgentWork]:
    return list(AgentWork.objects.for_org(ctx.organization).filter(root_id=ctx.root_id, plan=plan, kind=WorkKind.STEP)
                .select_related("task").order_by("task_id"))


def start_steps(ctx: Context, plan: Plan) -> list[AgentWork]:
    """One subtask per plan step, with the plan's dependencies (idempotent per plan version)."""
    from automation.services.tasks import task_create

    existing = step_works(ctx, plan)
    if existing:
        return existing
    root = ctx.task
    with transaction.atomic():
        locked = Task.objects.for_org(ctx.organization).select_for_update().get(pk=root.pk)
        existing = step_works(ctx, plan)
        if existing:
            return existing
        created: dict[str, Task] = {}
        for step in plan.steps:
            human = step.get("role") == "human"
            description = step.get("instructions", "")
            if step.get("success_criteria"):
                description += ("\n\n" if description else "") + "Done when:\n" + "\n".join(
                    f"- {c}" for c in step["success_criteria"])
            child = task_create(
                organization=ctx.organization, actor=ctx.requester, actor_label="agent:manager",
                title=step["title"], description=description, source=TaskSource.AGENT,
                execution_type=ExecutionType.MANUAL if human else ExecutionType.FULLY_AUTOMATED,
                executor="noop" if human else EXECUTOR,
                parameters={} if human else {"mode": "step", "step": step["id"]},
                priority=locked.priority, parent=locked, depends_on=[created[d] for d in step["depends_on"]],
                max_retries=2, step_key=step["id"][:120],
            )
            created[step["id"]] = child
            AgentWork.objects.for_org(ctx.organization).create(
                organization=ctx.organization, task=child, kind=WorkKind.STEP, root_id=root.pk, thread=ctx.thread,
                requester=ctx.requester, plan=plan, step_id=step["id"], step=step, scenario=ctx.work.scenario,
            )
        ctx.record("steps_started", role=MessageRole.MANAGER, mirror=False, payload={
            "plan": plan.pk, "version": plan.version,
            "subtasks": {sid: t.pk for sid, t in created.items()}})
    return step_works(ctx, plan)


def _children_state(ctx: Context, plan: Plan) -> tuple[list[AgentWork], list[Task]]:
    works = step_works(ctx, plan)
    tasks = list(Task.objects.for_org(ctx.organization).filter(pk__in=[w.task_id for w in works]).order_by("pk"))
    return works, tasks


def _total_cost(ctx: Context) -> str:
    total = LLMCall.objects.for_org(ctx.organization).filter(task_id=ctx.root_id).aggregate(t=Sum("cost"))["t"]
    return str(total or 0)


def manager_summary(ctx: Context, *, results: dict[str, Any], failures: list[str]) -> str:
    """The Manager's closing summary (a plain one if the model cannot give it)."""
    done = "\n".join(f"- {sid}: {(r or {}).get('report', '') if isinstance(r, dict) else r}" for sid, r in
                     results.items())
    brief = "Results of the steps:\n" + prompts.untrusted(done or "(none)", source="step reports")
    if failures:
        brief += "\n\nNot done:\n" + "\n".join(f"- {f}" for f in failures)
    messages = [
        {"role": "system", "content": prompts.SUMMARY},
        {"role": "user", "content": _request_text(ctx.task)},
        {"role": "user", "content": brief + "\n\nWrite the summary for the requester."},
    ]
    try:
        result = ctx.ask(role="manager", messages=messages, purpose="summary", step_key="summary")
        text = result.content.strip()
    except ServiceError as exc:
        result = None
        text = ""
        ctx.record("summary_failed", role=MessageRole.SYSTEM, mirror=False, payload={"error": exc.message})
    if not text:
        text = ("Done: " if not failures else "Stopped: ") + "; ".join(
            [*(f"{sid} done" for sid in results), *failures])
    ctx.record("summary", role=MessageRole.MANAGER, text=text, result=result,
               payload={"failures": failures, "steps": list(results)})
    ctx.record("cost", role=MessageRole.SYSTEM, mirror=False, payload={
        "llm_cost": _total_cost(ctx), "llm_calls": LLMCall.objects.for_org(ctx.organization)
        .filter(task_id=ctx.root_id).count()})
    return text


def _review_children(ctx: Context, plan: Plan) -> Outcome:
    works, tasks = _children_state(ctx, plan)
    by_task = {w.task_id: w for w in works}
    active = [t for t in tasks if t.status in ACTIVE]
    if active:
        ctx.work.waiting_for = Waiting.STEPS
        ctx.work.waiting = {"plan": plan.pk}
        ctx.save("waiting_for", "waiting")
        names = ", ".join(by_task[t.pk].step_id for t in active[:6])
        return Outcome.parked(f"waiting for its steps: {names}")
    if ctx.work.waiting_for == Waiting.STEPS:
        ctx.clear_waiting()
    results = {by_task[t.pk].step_id: t.result for t in tasks if t.status == S.COMPLETED}
    failures = [f"{by_task[t.pk].step_id} {t.status}: {t.failure_reason or 'no reason given'}"
                for t in tasks if t.status != S.COMPLETED]
    if not failures:
        summary = manager_summary(ctx, results=results, failures=[])
        return Outcome.completed({"summary": summary, "plan": plan.version, "steps": results})
    ctx.record("stalled", role=MessageRole.MANAGER, mirror=False,
               payload={"failures": failures, "replans": ctx.work.replans, "of": conf.max_replans()})
    if ctx.work.replans < conf.max_replans():
        ctx.work.replans += 1
        ctx.save("replans")
        ctx.record("replan", role=MessageRole.MANAGER,
                   text=f"Some steps did not finish ({'; '.join(failures)}). Re-planning "
                        f"({ctx.work.replans} of {conf.max_replans()}).",
                   payload={"failures": failures, "replan": ctx.work.replans})
        feedback = ("An earlier plan stalled. Completed steps (do not redo them):\n"
                    + prompts.untrusted({k: (v or {}).get("report", "") if isinstance(v, dict) else v
                                         for k, v in results.items()} or "none", source="completed steps")
                    + "\nWhat failed:\n" + "\n".join(f"- {f}" for f in failures)
                    + "\nPlan only the remaining work.")
        new_plan = _plan_or_ask(ctx, feedback=feedback)
        return new_plan if isinstance(new_plan, Outcome) else _proceed(ctx, new_plan)
    summary = manager_summary(ctx, results=results, failures=failures)
    return Outcome.failed(f"{summary} (gave up after {ctx.work.replans} re-plans)")


def _proceed(ctx: Context, plan: Plan) -> Outcome:
    """Go on with ``plan``: refuse, wait for access or approval, do the one step, or run the steps."""
    if plan.status == PlanStatus.INVALID:
        problems = "; ".join(p["message"] for p in plan.problems)
        return Outcome.failed(f"The plan could not be used: {problems}")
    if plan.status == PlanStatus.BLOCKED:
        ctx.work.waiting_for = Waiting.ACCESS
        ctx.work.waiting = {"plan": plan.pk, "needs": plan.needs}
        ctx.save("waiting_for", "waiting")
        return Outcome.parked("blocked: it needs " + "; ".join(plan.needs))
    gate = _plan_gate(ctx, plan)
    if gate is not None:
        return gate
    if plan.strategy == Strategy.IMMEDIATE:
        _adopt_single_step(ctx, plan)
        outcome = run_step(ctx)
        if outcome.status == "completed":
            summary = (outcome.output or {}).get("report", "") if isinstance(outcome.output, dict) else ""
            ctx.record("summary", role=MessageRole.MANAGER, text=summary or "Done.",
                       payload={"steps": [ctx.work.step_id]})
            ctx.record("cost", role=MessageRole.SYSTEM, mirror=False, payload={"llm_cost": _total_cost(ctx)})
            return Outcome.completed({"summary": summary, "plan": plan.version,
                                      "steps": {ctx.work.step_id: outcome.output}})
        return outcome
    start_steps(ctx, plan)
    return _review_children(ctx, plan)


def _adopt_single_step(ctx: Context, plan: Plan) -> None:
    step = plan.steps[0]
    if ctx.work.step_id != step["id"] or ctx.work.plan_id != plan.pk:
        answers = (ctx.work.step or {}).get("answers")
        ctx.work.step = {**step, "answers": answers} if answers else step
        ctx.work.step_id, ctx.work.plan = step["id"], plan
        ctx.work.revision, ctx.work.conversation, ctx.work.output = 1, [], None
        ctx.save("step", "step_id", "plan", "revision", "conversation", "output")


def ask_requester(ctx: Context, question: ManagerQuestion) -> Outcome:
    """Park the request until the requester answers the Manager's question (in the thread it came from)."""
    work = ctx.work
    with transaction.atomic():
        work.waiting_for = Waiting.CLARIFICATION
        work.waiting = {"question": question.question, "about": "request"}
        ctx.save("waiting_for", "waiting")
        if ctx.thread is not None:
            Thread.objects.for_org(ctx.organization).filter(pk=ctx.thread.pk).update(
                pending={"kind": "task_question", "task": ctx.task.pk, "question": question.question})
        ctx.record("clarification_requested", role=MessageRole.MANAGER, text=question.question, result=question.result,
                   payload={"question": question.question, "kind": "question", "role_asking": "manager"})
    return Outcome.parked(f"waiting for the requester's answer: {question.question}")


def _take_answer(ctx: Context) -> Outcome | None:
    """None when the Manager may plan (an answer came: it joins the planning conversation); else still waiting."""
    work = ctx.work
    if work.waiting_for != Waiting.CLARIFICATION:
        return None
    answer = work.waiting.get("answer")
    if not answer:
        return Outcome.parked(f"waiting for the requester's answer: {work.waiting.get('question', '')}")
    answers = [*(work.step or {}).get("answers", []), {"question": work.waiting.get("question", ""),
                                                        "answer": str(answer)}]
    work.step = {**(work.step or {}), "answers": answers}
    work.waiting_for, work.waiting = Waiting.NOTHING, {}
    ctx.save("step", "waiting_for", "waiting")
    ctx.record("clarification_answered", role=MessageRole.MANAGER, mirror=False, payload={"answer": answer})
    return None


def _plan_or_ask(ctx: Context, *, feedback: str = "") -> Plan | Outcome:
    try:
        return manager_plan(ctx, feedback=feedback)
    except ManagerQuestion as question:
        return ask_requester(ctx, question)
    except ServiceError as exc:
        return ctx.model_failure(exc, role=MessageRole.MANAGER, doing="planning")


def run_request(ctx: Context) -> Outcome:
    """One attempt of a request task on a worker (see the module docstring)."""
    gate = ctx.budget_gate()
    if gate is not None:
        return gate
    if ctx.work.kind == WorkKind.REQUEST and ctx.work.waiting.get("about") == "request":
        waiting = _take_answer(ctx)
        if waiting is not None:
            return waiting
        planned = _plan_or_ask(ctx)
        return planned if isinstance(planned, Outcome) else _proceed(ctx, planned)
    plan = current_plan(ctx.work)
    if plan is not None and plan.status == PlanStatus.BLOCKED and ctx.work.waiting_for == Waiting.ACCESS:
        ctx.clear_waiting()  # a person resumed it: access may have been granted, plan again
        plan = None
    if plan is not None and plan.status in (PlanStatus.SUPERSEDED, PlanStatus.INVALID, PlanStatus.REJECTED) \
            and ctx.work.waiting_for == Waiting.NOTHING and not step_works(ctx, plan):
        plan = None
    if plan is None:
        planned = _plan_or_ask(ctx)
        if isinstance(planned, Outcome):
            return planned
        plan = planned
    if plan.strategy == Strategy.DECOMPOSE and step_works(ctx, plan):
        return _review_children(ctx, plan)
    return _proceed(ctx, plan)


# --- executing at once (the "execute" endpoint and the chat) --------------------------------


def _finish_now(task: Task, output: Any) -> Task:
    """Complete a pending request task whose single step was done at once."""
    from automation.services import graph
    from automation.services.status import task_transition

    with transaction.atomic():
        locked = Task.objects.for_org(task.organization).select_for_update().get(pk=task.pk)
        if locked.status != S.PENDING:
            return locked
        task_transition(task=locked, to=S.COMPLETED, actor_label="agent:manager", reason="done at once",
                        fields={"result": output, "actual_duration": timezone.now() - locked.created_at})
        graph.after_terminal(locked, actor_label="agent:manager")
    return locked


def ai_task_execute(*, task: Task, actor: User | None) -> dict[str, Any]:
    """Plan a pending AI task now and act on the strategy; return it.

    ``immediate``: the single step is done now and the answer holds the
    result (or, if it must wait for a person, the engine takes over).
    ``decompose``: the subtasks are created, each with its own execution
    type, and the engine runs them. ``blocked``: the task is blocked and the
    answer lists the access or human action it needs. A semi-automated task
    first waits for the plan's approval (``awaiting_approval``).
    """
    from automation.services.tasks import task_block, task_execute

    task = Task.objects.for_org(task.organization).get(pk=task.pk)
    if task.executor != EXECUTOR:
        raise InvalidInput(f"task {task.label} is not run by the AI workforce", field="executor")
    if task.execution_type == ExecutionType.MANUAL:
        raise InvalidInput(f"task {task.label} is manual: a person does it", field="execution_type")
    if task.status != S.PENDING:
        raise InvalidInput(f"task {task.label} is {task.status}; only a pending task can be executed "
                           "(use retry for a failed one)", field="status", code="illegal_transition")
    work = work_for_request(task, requester=task.created_by or actor)
    ctx = Context(work)
    plan = current_plan(work)
    if plan is None or plan.status in (PlanStatus.INVALID, PlanStatus.BLOCKED, PlanStatus.REJECTED,
                                       PlanStatus.SUPERSEDED):
        planned = _plan_or_ask(ctx)
        if isinstance(planned, Outcome):
            return {"strategy": None, **_hand_over(task, actor, planned)}
        plan = planned
    answer: dict[str, Any] = {"strategy": plan.strategy, "plan": plan_json(plan)}
    if plan.status == PlanStatus.INVALID:
        problems = [p["message"] for p in plan.problems]
        _fail_now(task, actor, "The plan could not be used: " + "; ".join(problems))
        return {**answer, "strategy": Strategy.BLOCKED, "needs": ["a usable plan", *problems], "status": "failed"}
    if plan.status == PlanStatus.BLOCKED:
        task_block(task=task, actor=actor, actor_label="agent:manager",
                   reason=("It needs: " + "; ".join(plan.needs))[:2000])
        return {**answer, "strategy": Strategy.BLOCKED, "needs": plan.needs, "status": "blocked"}
    if needs_plan_approval(task) and plan.status != PlanStatus.APPROVED:
        with transaction.atomic():  # the approval is seen only once the task is queued (its executor parks on it)
            approval = request_plan_approval(ctx, plan) if plan.status == PlanStatus.PROPOSED else \
                approval_of(ctx.organization, plan.approval_id)
            task_execute(task=task, actor=actor, actor_label="agent:manager")
        answer["plan"] = plan_json(plan)
        return {**answer, "status": "awaiting_approval", "approval": approval.pk if approval else None}
    if plan.strategy == Strategy.IMMEDIATE:
        _adopt_single_step(ctx, plan)
        outcome = run_step(ctx)
        if outcome.status == "completed":
            summary = (outcome.output or {}).get("report", "") if isinstance(outcome.output, dict) else ""
            result = {"summary": summary, "plan": plan.version, "steps": {ctx.work.step_id: outcome.output}}
            ctx.record("summary", role=MessageRole.MANAGER, text=summary or "Done.",
                       payload={"steps": [ctx.work.step_id]})
            _finish_now(task, result)
            return {**answer, "status": "completed", "result": result}
        return {**answer, **_hand_over(task, actor, outcome)}
    works = start_steps(ctx, plan)
    task_execute(task=task, actor=actor, actor_label="agent:manager")
    return {**answer, "status": "running", "subtasks": [
        {"id": w.task_id, "step": w.step_id, "title": w.task.title, "execution_type": w.task.execution_type,
         "depends_on": w.step.get("depends_on", [])} for w in works]}


def _fail_now(task: Task, actor: User | None, reason: str) -> None:
    """End a pending request that cannot go on, naming why (blocked, then failed: the machine's only way)."""
    from automation.services.tasks import task_block, task_fail

    task_block(task=task, actor=actor, actor_label="agent:manager", reason=reason[:2000])
    task_fail(task=task, actor=None, actor_label="agent:manager", reason=reason[:2000])


def _hand_over(task: Task, actor: User | None, outcome: Outcome) -> dict[str, Any]:
    """What could not be finished at once: the engine goes on (a wait, a retry), or the request ends."""
    from automation.services.tasks import task_execute

    if outcome.status == "parked" or outcome.retryable:
        task_execute(task=task, actor=actor, actor_label="agent:manager")
        return {"status": "waiting" if outcome.status == "parked" else "retrying", "reason": outcome.reason}
    _fail_now(task, actor, outcome.reason)
    return {"status": "failed", "reason": outcome.reason}


# --- a person edits the plan ---------------------------------------------------------------


def plan_edit(*, plan: Plan, actor: User, steps: Any, summary: str | None = None) -> Plan:
    """A person's version of the plan: checked like the Manager's, then the next version.

    Only the latest version of a plan whose steps have not started can be
    edited. A pending approval of the earlier version is voided; a
    semi-automated task asks for approval of the new one.
    """
    from automation.services.tasks import task_resume

    organization = plan.organization
    with transaction.atomic():
        root = Task.objects.for_org(organization).select_for_update().get(pk=plan.task_id)
        latest = Plan.objects.for_org(organization).filter(task_id=root.pk).order_by("-version").first()
        if latest is None or latest.pk != plan.pk:
            raise InvalidInput("only the latest version of a plan can be edited", field="plan")
        if plan.status not in (PlanStatus.PROPOSED, PlanStatus.AWAITING_APPROVAL, PlanStatus.INVALID,
                               PlanStatus.BLOCKED):
            raise InvalidInput(f"a plan that is {plan.status} can no longer be edited", field="plan")
        if root.status not in (S.PENDING, S.QUEUED, S.BLOCKED):
            raise InvalidInput(f"task {root.label} is {root.status}; its plan can no longer change", field="plan")
        work = work_for_request(root, requester=root.created_by or actor)
        ctx = Context(work)
        check = plan_check({"summary": summary if summary is not None else plan.summary, "strategy": "decompose",
                            "steps": steps}, organization=organization, requester=work.requester)
        if check.problems:
            raise InvalidInput("; ".join(p.message for p in check.problems), field="steps", code="invalid_plan")
        if plan.approval_id and plan.status == PlanStatus.AWAITING_APPROVAL:
            approval = approval_of(organization, plan.approval_id)
            if approval is not None:
                approval_void(approval=approval, actor=actor, reason=f"plan v{plan.version} was edited")
        Plan.objects.for_org(organization).filter(pk=plan.pk).update(status=PlanStatus.SUPERSEDED)
        new = Plan.objects.for_org(organization).create(
            organization=organization, task=root, version=plan.version + 1, status=PlanStatus.PROPOSED,
            strategy=check.strategy, summary=check.summary, steps=check.steps, author_label=actor.email,
            created_by=actor,
        )
        ctx.record("plan_edited", role=MessageRole.MANAGER, text=f"{actor.email} edited the plan.\n{plan_text(new)}",
                   payload={"plan": new.pk, "version": new.version, "steps": new.steps, "by": actor.email})
        if needs_plan_approval(root) and root.status != S.PENDING:
            request_plan_approval(ctx, new)
        if root.status == S.BLOCKED and root.blocked_kind == "manual":
            task_resume(task=root, actor=actor, reason=f"plan v{new.version} replaces the one that blocked it")
    return new


def plans_of(*, task: Task) -> list[Plan]:
    return list(Plan.objects.for_org(task.organization).filter(task=task).order_by("version"))

