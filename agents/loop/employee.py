"""The Employee executes one plan step with function calling; the Supervisor reviews it.

One revision of a step is a conversation with the worker-tier model over the
tools the step names and the requester may use (at most
``AGENTS_MAX_TOOL_ITERATIONS`` model turns with tool calls). Every call goes
through ``invoke_tool`` under an idempotency key fixed when the model asked
for it, so a resumed step (after an approval, an answer or a crash) replays a
finished call instead of repeating its side effect. A tool the step does not
name is refused here, whatever the model says.

The Supervisor then judges the report against the step's success criteria:
``accept`` (done, or parked for a person's approval when the step needs one),
``revise`` (feedback; a new numbered revision, at most
``AGENTS_MAX_REVISIONS``), or ``escalate`` (a person decides). A step that
reaches the cap goes to a person too: nothing loops forever.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction

from accounts.errors import ServiceError
from accounts.models import ApprovalStatus
from accounts.roles import Scope
from accounts.services.approvals import approval_request_create
from agents import conf, prompts
from agents.loop.runtime import Context, Outcome, approval_of
from agents.models import AgentWork, MessageRole, Thread, Waiting

ASK_USER = "ask_user"
ASK_USER_SPEC = {
    "type": "function",
    "function": {
        "name": ASK_USER,
        "description": "Ask the requester one precise question when the step cannot go on without the answer.",
        "parameters": {"type": "object", "properties": {"question": {"type": "string", "minLength": 3}},
                       "required": ["question"]},
    },
}

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["accept", "revise", "escalate"]},
        "feedback": {"type": "string"},
        "criteria_met": {"type": "boolean"},
    },
    "required": ["verdict", "feedback"],
}

STEP_APPROVAL_KIND = "task"  # automation's kind: its decision handler resumes (approved) or fails the step's task
STEP_APPROVAL_SUBJECT = "automation.task"

_REFERENCE = re.compile(r"\{\{\s*steps\.([a-z][a-z0-9_]*)\.([A-Za-z0-9_.-]+)\s*\}\}")


# --- step references -------------------------------------------------------------------------


def _step_results(ctx: Context) -> dict[str, dict[str, Any]]:
    """What earlier steps of the same request produced, by step id (latest plan version first)."""
    rows = (
        AgentWork.objects.for_org(ctx.organization)
        .filter(root_id=ctx.root_id, kind="step")
        .exclude(task_id=ctx.task.pk)
        .order_by("-plan__version", "-id")
        .values("step_id", "tool_results", "output")
    )
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["step_id"] in found:
            continue
        merged: dict[str, Any] = {}
        for result in (row["tool_results"] or {}).values():
            if isinstance(result, dict):
                merged.update(result)
        output = row["output"] if isinstance(row["output"], dict) else {}
        merged.setdefault("report", output.get("report", ""))
        found[row["step_id"]] = merged
    return found


def _dig(value: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(path)
    return value


def resolve_references(value: Any, results: dict[str, dict[str, Any]]) -> Any:
    """Replace ``{{ steps.<id>.<field> }}`` with an earlier step's tool result (KeyError names what is missing)."""
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value.strip())
        if whole:
            return _dig(results[whole.group(1)], whole.group(2)) if whole.group(1) in results else _missing(whole)
        return _REFERENCE.sub(lambda m: str(_dig(results[m.group(1)], m.group(2)) if m.group(1) in results
                                            else _missing(m)), value)
    if isinstance(value, dict):
        return {k: resolve_references(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_references(v, results) for v in value]
    return value


def _missing(match: re.Match[str]) -> Any:
    raise KeyError(f"steps.{match.group(1)}")


# --- the step ---------------------------------------------------------------------------------


def _allowed_specs(ctx: Context) -> tuple[list[dict[str, Any]], set[str]]:
    """Function specs of the step's tools the requester may use (and ask_user)."""
    from accounts.models import Membership
    from tools.selectors import tools_available_to

    wanted = set(ctx.work.step.get("tools") or [])
    membership = (
        Membership.objects.for_org(ctx.organization).select_related("organization").filter(user=ctx.requester).first()
        if ctx.requester is not None else None
    )
    available = list(tools_available_to(membership)) if membership is not None else []
    tools = [t for t in available if t.name in wanted]
    return [t.spec() for t in tools] + [ASK_USER_SPEC], {t.name for t in tools}


def _request_text(ctx: Context) -> str:
    root = ctx.work.root
    parameters = root.parameters or {}
    return str(parameters.get("request") or root.description or root.title)


def _brief(ctx: Context) -> str:
    step = ctx.work.step
    lines = [f"Your step: {step.get('title', ctx.work.step_id)} (id {ctx.work.step_id}, revision {ctx.work.revision})."]
    if step.get("instructions"):
        lines.append(f"Instructions: {step['instructions']}")
    criteria = step.get("success_criteria") or []
    if criteria:
        lines.append("Success criteria:\n" + "\n".join(f"- {c}" for c in criteria))
    earlier = _step_results(ctx)
    depends = step.get("depends_on") or []
    if depends:
        shown = {d: earlier.get(d, {}) for d in depends}
        lines.append("Results of the steps this one depends on:\n" + prompts.untrusted(shown, source="earlier steps"))
    feedback = [v for v in ctx.work.verdicts if v.get("verdict") == "revise"]
    if feedback and ctx.work.revision > 1:
        last = feedback[-1]
        lines.append(f"The Supervisor sent revision {ctx.work.revision - 1} back: {last.get('feedback', '')}")
        lines.append("Your previous report:\n" + prompts.untrusted(last.get("report", ""), source="previous report"))
    return "\n\n".join(lines)


def _start_conversation(ctx: Context) -> list[dict[str, Any]]:
    system = prompts.fill(prompts.EMPLOYEE, organization=ctx.organization.name)
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": _request_text(ctx)},
        {"role": "user", "content": _brief(ctx)},
    ]


def _turns(conversation: list[dict[str, Any]]) -> int:
    return sum(1 for m in conversation if m.get("role") == "assistant" and m.get("tool_calls"))


def run_step(ctx: Context) -> Outcome:
    """Run (or resume) the step of ``ctx.work`` until it completes, parks or fails."""
    work = ctx.work
    gate = ctx.budget_gate()
    if gate is not None:
        return gate
    if work.waiting_for == Waiting.OUTPUT_APPROVAL:
        return _after_output_approval(ctx)
    if work.waiting_for == Waiting.CLARIFICATION:
        answer = work.waiting.get("answer")
        if not answer:
            return Outcome.parked(f"waiting for the requester's answer: {work.waiting.get('question', '')}")
        work.conversation.append({"role": "tool", "tool_call_id": work.waiting.get("call_id", "ask_user"),
                                  "content": f"The requester answered: {answer}"})
        pending = work.waiting.get("pending_calls") or []
        work.waiting_for, work.waiting = Waiting.NOTHING, ({"pending_calls": pending} if pending else {})
        ctx.save("conversation", "waiting_for", "waiting")
        ctx.record("clarification_answered", role=MessageRole.EMPLOYEE, mirror=False, payload={"answer": answer})
    while True:
        outcome = _employee(ctx)
        if outcome is not None:
            return outcome
        report = work.output.get("report", "") if isinstance(work.output, dict) else ""
        outcome = _supervise(ctx, report)
        if outcome is not None:
            return outcome


def _employee(ctx: Context) -> Outcome | None:
    """The tool loop of the current revision; None once the Employee has reported (``work.output``)."""
    work = ctx.work
    if not work.conversation:
        work.conversation = _start_conversation(ctx)
        work.output = None
        ctx.save("conversation", "output")
        ctx.record("step_started", role=MessageRole.EMPLOYEE,
                   text=f"Working on “{work.step.get('title', work.step_id)}”"
                        + (f" (revision {work.revision})" if work.revision > 1 else "") + ".",
                   payload={"step": work.step_id, "revision": work.revision, "tools": work.step.get("tools", [])})
    if isinstance(work.output, dict) and work.output.get("revision") == work.revision:
        return None  # reported already; the review was interrupted
    if work.waiting_for == Waiting.TOOL_APPROVAL:
        approval = approval_of(ctx.organization, work.waiting.get("approval"))
        if approval is not None and approval.status == ApprovalStatus.PENDING:
            return Outcome.parked(f"waiting for approval #{approval.pk}: {approval.title}")
    specs, allowed = _allowed_specs(ctx)
    pending = work.waiting.get("pending_calls") or []
    if pending:
        outcome = _run_calls(ctx, pending, allowed)
        if outcome is not None:
            return outcome
    while True:
        turn = _turns(work.conversation) + 1
        if turn > conf.max_tool_iterations():
            report = (f"Stopped after {conf.max_tool_iterations()} rounds of tool calls without a final report.")
            ctx.record("iteration_limit", role=MessageRole.SYSTEM, text=report,
                       payload={"step": work.step_id, "revision": work.revision})
            _set_report(ctx, report)
            return None
        try:
            result = ctx.ask(role="employee", messages=work.conversation, purpose="step", step_key=work.step_id,
                             attempt=work.revision, tools=specs)
        except ServiceError as exc:
            return ctx.model_failure(exc, role=MessageRole.EMPLOYEE, doing=f"working on {work.step_id}")
        ctx.record("iteration", role=MessageRole.EMPLOYEE, result=result, mirror=False, payload={
            "step": work.step_id, "revision": work.revision, "turn": turn,
            "tool_calls": [c.name for c in result.tool_calls]})
        if not result.tool_calls:
            _set_report(ctx, result.content.strip() or "(the Employee gave no report)", result=result)
            return None
        work.conversation.append(result.assistant_message())
        pending = [{"id": c.id, "name": c.name, "arguments": c.arguments,
                    "key": f"agent:{ctx.task.pk}:r{work.revision}:t{turn}:c{i}"}
                   for i, c in enumerate(result.tool_calls)]
        work.waiting = {"pending_calls": pending}
        ctx.save("conversation", "waiting")
        outcome = _run_calls(ctx, pending, allowed)
        if outcome is not None:
            return outcome


def _set_report(ctx: Context, report: str, *, result: Any = None) -> None:
    work = ctx.work
    report = prompts.readable(report)
    work.output = {"step": work.step_id, "report": report, "revision": work.revision,
                   "tool_results": work.tool_results}
    ctx.save("output")
    ctx.record("step_output", role=MessageRole.EMPLOYEE, text=report, result=result,
               payload={"step": work.step_id, "revision": work.revision})


def _tool_message(call_id: str, name: str, body: Any) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": prompts.untrusted(body, source=f"tool:{name}")}


def _run_calls(ctx: Context, pending: list[dict[str, Any]], allowed: set[str]) -> Outcome | None:
    """Answer each pending tool call in order; park on an approval or a question (the rest waits with it)."""
    from tools.services.invocation import invoke_tool
    from tools.types import InvocationContext
    from tools.types import Outcome as ToolOutcome

    work = ctx.work
    while pending:
        call = pending[0]
        name, call_id = call["name"], call["id"]
        if name == ASK_USER:
            return _ask_requester(ctx, call, pending[1:])
        if name not in allowed:
            body = {"outcome": "refused", "code": "not_allowed",
                    "reason": f"{name} is not a tool of this step (allowed: {', '.join(sorted(allowed)) or 'none'})"}
            ctx.record("tool_refused", role=MessageRole.TOOL,
                       text=f"Refused {name}: not a tool of this step.",
                       payload={"tool": name, "step": work.step_id, "code": "not_allowed"})
        elif ctx.requester is None:
            body = {"outcome": "refused", "code": "no_requester", "reason": "the task acts for nobody"}
        else:
            try:
                arguments = resolve_references(call["arguments"], _step_results(ctx))
            except KeyError as exc:
                arguments = None
                body = {"outcome": "refused", "code": "unknown_reference",
                        "reason": f"no earlier result for {exc.args[0]}"}
            if arguments is not None:
                result = invoke_tool(
                    organization=ctx.organization, actor=ctx.requester, tool_name=name, arguments=arguments,
                    idempotency_key=call["key"],
                    context=InvocationContext(source="agent", group=f"task:{ctx.root_id}", task_id=str(ctx.task.pk),
                                              step_id=work.step_id[:64],
                                              metadata={"revision": work.revision, "call": call_id}),
                )
                body = result.for_model()
                tool_call_id = result.tool_call.pk if result.tool_call is not None else None
                summary = _tool_summary(name, result.outcome, result.result if result.ok else result.reason)
                ctx.record("tool_call", role=MessageRole.TOOL, text=summary, payload={
                    "tool": name, "step": work.step_id, "outcome": result.outcome, "code": result.code,
                    "tool_call": tool_call_id, "replayed": result.replayed,
                    "approval": result.approval.pk if result.approval is not None else None})
                if result.outcome == ToolOutcome.NEEDS_APPROVAL and result.approval is not None:
                    work.waiting_for = Waiting.TOOL_APPROVAL
                    work.waiting = {"pending_calls": pending, "approval": result.approval.pk}
                    ctx.save("waiting_for", "waiting")
                    ctx.record("approval_requested", role=MessageRole.SYSTEM,
                               text=f"{name} needs approval #{result.approval.pk} ({result.reason}). "
                                    "The step waits for the decision.",
                               payload={"approval": result.approval.pk, "tool": name, "kind": "tool_call"})
                    return Outcome.parked(f"waiting for approval #{result.approval.pk} of {name}")
                if result.ok and isinstance(result.result, dict):
                    work.tool_results = {**work.tool_results, name: result.result}
        work.conversation.append(_tool_message(call_id, name, body))
        pending = pending[1:]
        work.waiting_for = Waiting.NOTHING
        work.waiting = {"pending_calls": pending} if pending else {}
        ctx.save("conversation", "waiting_for", "waiting", "tool_results")
    return None


def _tool_summary(name: str, outcome: str, detail: Any) -> str:
    text = prompts.as_text(detail)
    if isinstance(detail, dict):
        keys = ("path", "download_url", "message_id", "uid", "id", "employee_id", "sent", "recipients")
        shown = {k: detail[k] for k in keys if k in detail}
        text = prompts.as_text(shown or detail)
    return f"{name} → {outcome}: {text[:300]}"


def _ask_requester(ctx: Context, call: dict[str, Any], rest: list[dict[str, Any]]) -> Outcome:
    work = ctx.work
    question = str((call.get("arguments") or {}).get("question") or "").strip() or "Could you tell me more?"
    with transaction.atomic():
        work.waiting_for = Waiting.CLARIFICATION
        work.waiting = {"question": question, "call_id": call["id"], "pending_calls": rest}
        ctx.save("waiting_for", "waiting")
        if ctx.thread is not None:
            Thread.objects.for_org(ctx.organization).filter(pk=ctx.thread.pk).update(
                pending={"kind": "task_question", "task": ctx.task.pk, "question": question})
        ctx.record("clarification_requested", role=MessageRole.EMPLOYEE, text=question,
                   payload={"step": work.step_id, "question": question, "kind": "question"})
    return Outcome.parked(f"waiting for the requester's answer: {question}")


# --- the Supervisor --------------------------------------------------------------------------


def _review_brief(ctx: Context, report: str) -> str:
    step = ctx.work.step
    criteria = step.get("success_criteria") or ["The step is done as asked."]
    return "\n\n".join([
        f"Step: {step.get('title', ctx.work.step_id)} (id {ctx.work.step_id}), revision {ctx.work.revision} of at "
        f"most {conf.max_revisions()}.",
        "Success criteria:\n" + "\n".join(f"- {c}" for c in criteria),
        "The Employee's report:\n" + prompts.untrusted(report, source="employee report"),
        "Tool results:\n" + prompts.untrusted(ctx.work.tool_results or {}, source="tool results"),
    ])


def _supervise(ctx: Context, report: str) -> Outcome | None:
    """The Supervisor's verdict on the current revision; None when a new revision starts."""
    work = ctx.work
    messages = [
        {"role": "system", "content": prompts.SUPERVISOR},
        {"role": "user", "content": _request_text(ctx)},
        {"role": "user", "content": _review_brief(ctx, report)},
    ]
    try:
        result = ctx.ask(role="supervisor", messages=messages, purpose="review", step_key=work.step_id,
                         attempt=work.revision, response_schema=VERDICT_SCHEMA)
    except ServiceError as exc:
        return ctx.model_failure(exc, role=MessageRole.SUPERVISOR, doing=f"reviewing {work.step_id}")
    verdict = str(result.parsed.get("verdict"))
    feedback = str(result.parsed.get("feedback") or "").strip()
    record = {"revision": work.revision, "verdict": verdict, "feedback": feedback, "report": report[:4000],
              "criteria_met": result.parsed.get("criteria_met")}
    work.verdicts = [*work.verdicts, record]
    ctx.save("verdicts")
    ctx.record("verdict", role=MessageRole.SUPERVISOR, result=result,
               text=f"{verdict.capitalize()} (revision {work.revision}): {feedback or 'no remarks'}",
               payload={"step": work.step_id, "revision": work.revision, "verdict": verdict})
    if verdict == "accept":
        if work.step.get("needs_approval"):
            return _ask_output_approval(ctx, report, escalated=False, why="")
        return _complete(ctx)
    if verdict == "revise" and work.revision < conf.max_revisions():
        work.revision += 1
        work.conversation = []
        work.output = None
        work.waiting = {}
        ctx.save("revision", "conversation", "output", "waiting")
        ctx.record("revision", role=MessageRole.SUPERVISOR,
                   text=f"Revision {work.revision} of {conf.max_revisions()} requested: {feedback}",
                   payload={"step": work.step_id, "revision": work.revision, "of": conf.max_revisions()})
        return None
    why = (f"the Supervisor escalated it: {feedback}" if verdict == "escalate" else
           f"it still needs changes after {work.revision} revisions (the limit): {feedback}")
    return _ask_output_approval(ctx, report, escalated=True, why=why)


def _complete(ctx: Context) -> Outcome:
    work = ctx.work
    output = {**(work.output or {}), "verdicts": work.verdicts}
    ctx.record("step_completed", role=MessageRole.SYSTEM, mirror=False, payload={
        "step": work.step_id, "revisions": work.revision, "llm_cost": _step_cost(ctx)})
    return Outcome.completed(output)


def _step_cost(ctx: Context) -> str:
    from django.db.models import Sum

    from agents.models import LLMCall

    total = LLMCall.objects.for_org(ctx.organization).filter(
        task_id=ctx.root_id, step_key=ctx.work.step_id).aggregate(total=Sum("cost"))["total"]
    return str(total or 0)


def _ask_output_approval(ctx: Context, report: str, *, escalated: bool, why: str) -> Outcome:
    """Park the step until a person approves its result (a planned approval, or an escalation)."""
    work = ctx.work
    step = work.step
    title = (f"Review needed: {step.get('title', work.step_id)}" if escalated
             else f"Approve: {step.get('title', work.step_id)}")
    links = [v for v in (work.tool_results or {}).values() if isinstance(v, dict) and v.get("download_url")]
    reason_lines = [why] if why else []
    reason_lines.append(f"Result of task {ctx.task.label}:\n{report}")
    for result in links:
        reason_lines.append(f"Read it first: {result['download_url']}")
    requester = ctx.requester
    try:
        approval = approval_request_create(
            organization=ctx.organization, kind=STEP_APPROVAL_KIND, subject_type=STEP_APPROVAL_SUBJECT,
            subject_id=str(ctx.task.pk), title=title[:200], reason="\n\n".join(reason_lines),
            requested_by=requester, requested_by_label=f"agent on task #{ctx.task.pk}",
            arguments={"task": ctx.task.pk, "step": work.step_id, "revision": work.revision,
                       "report": report[:4000], "approver": step.get("approver", ""), "escalated": escalated},
            required_scope=Scope.APPROVALS_DECIDE,
        )
    except ServiceError as exc:
        return Outcome.failed(f"could not ask for approval of {work.step_id}: {exc.message}")
    work.waiting_for = Waiting.OUTPUT_APPROVAL
    work.waiting = {"approval": approval.pk, "escalated": escalated}
    ctx.save("waiting_for", "waiting")
    approver = f" ({step['approver']})" if step.get("approver") else ""
    ctx.record("approval_requested", role=MessageRole.SYSTEM,
               text=(f"{title}: approval #{approval.pk} is waiting for a person{approver}."
                     + (f" Why: {why}" if why else "")),
               payload={"approval": approval.pk, "kind": "step_output", "step": work.step_id, "escalated": escalated})
    return Outcome.parked(f"waiting for approval #{approval.pk}: {title}")


def _after_output_approval(ctx: Context) -> Outcome:
    work = ctx.work
    approval = approval_of(ctx.organization, work.waiting.get("approval"))
    if approval is None:
        ctx.clear_waiting()
        return Outcome.failed("the approval this step waited for is gone")
    if approval.status == ApprovalStatus.PENDING:
        return Outcome.parked(f"waiting for approval #{approval.pk}: {approval.title}")
    if approval.status != ApprovalStatus.APPROVED:
        ctx.clear_waiting()
        text = f"Approval #{approval.pk} was {approval.status}: {approval.decision_reason or 'no reason given'}."
        ctx.record("approval_refused", role=MessageRole.SYSTEM, text=text, payload={"approval": approval.pk})
        return Outcome.failed(text)
    decider = approval.decided_by.email if approval.decided_by else "someone"
    ctx.record("approved", role=MessageRole.SYSTEM,
               text=f"{decider} approved “{work.step.get('title', work.step_id)}” (approval #{approval.pk}).",
               payload={"approval": approval.pk, "step": work.step_id})
    ctx.clear_waiting()
    return _complete(ctx)
