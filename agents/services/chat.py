"""Handling a user's message: parse its intent, then answer, act, hand work to the Manager, or manage memory.

:func:`message_handle` runs in the ``agents.handle_message`` Celery task. It
answers in the same thread, never raises for a model's failure (the person
reads what went wrong), and handles each message once.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.db import transaction

from accounts.errors import ServiceError
from accounts.models import Membership, Organization, User
from accounts.roles import Scope
from agents import conf, prompts
from agents.llm.gateway import complete
from agents.models import AgentWork, Message, MessageRole, Thread, Waiting
from agents.services.actions import action_arguments, describe_errors
from agents.services.activity import message_add
from agents.services.intents import Intent, intent_parse
from agents.services.memory_context import memory_text

logger = logging.getLogger(__name__)

NEW_WORK = ("complex_task", "simple_action", "memory_command")
_PREFIXES = {
    "remember": r"^(please\s+)?(remember|note|keep in mind|don't forget)(\s+that)?[:,]?\s+",
    "forget": r"^(please\s+)?(forget|delete|erase|remove)(\s+(everything|what you know))?(\s+(about|that))?[:,]?\s+",
    "about": r"^(what do you know|what do you remember|tell me what you know)(\s+about)?[:,]?\s+",
}


def _strip(kind: str, text: str) -> str:
    cleaned = re.sub(_PREFIXES[kind], "", text.strip(), flags=re.IGNORECASE).strip()
    return cleaned.rstrip("?.! ") or text.strip()


def _membership(organization: Organization, user: User | None) -> Membership | None:
    if user is None:
        return None
    return Membership.objects.for_org(organization).select_related("organization").filter(user=user).first()


def _reply(message: Message, content: str, *, role: str = MessageRole.ASSISTANT, result: Any = None,
           **metadata: Any) -> Message:
    return message_add(thread=message.thread, role=role, content=content, result=result,
                       metadata={"reply_to": message.pk, **metadata})


def _mark(message: Message, **fields: Any) -> None:
    message.metadata = {**(message.metadata or {}), **fields}
    Message.objects.for_org(message.organization).filter(pk=message.pk).update(metadata=message.metadata)


def _available_tools(membership: Membership | None) -> list[Any]:
    if membership is None:
        return []
    from tools.selectors import tools_available_to

    return tools_available_to(membership)


def _context_for(pending: dict[str, Any]) -> list[dict[str, Any]]:
    if pending.get("kind") == "action":
        return [{"role": "user", "content": str(pending.get("request", ""))},
                {"role": "assistant", "content": str(pending.get("question", ""))}]
    if pending.get("kind") == "task_question":
        return [{"role": "assistant", "content": str(pending.get("question", ""))}]
    return []


def message_handle(*, message: Message) -> list[Message]:
    """Handle one user message (idempotent: a handled message is left alone); return the replies."""
    if message.role != MessageRole.USER or (message.metadata or {}).get("status") == "handled":
        return []
    thread = Thread.objects.for_org(message.organization).get(pk=message.thread_id)
    message.thread = thread
    organization, user = message.organization, message.author
    membership = _membership(organization, user)
    if membership is None or not membership.has_scope(Scope.AGENTS_USE):
        _mark(message, status="handled", intent="refused")
        return [_reply(message, "You are not allowed to use the assistant in this organization.",
                       role=MessageRole.SYSTEM, code="forbidden")]
    pending = thread.pending or {}
    tools = _available_tools(membership)
    try:
        intent = intent_parse(organization=organization, user=user, text=message.content,
                              context=_context_for(pending), tool_names=[t.name for t in tools],
                              scenario=str(pending.get("scenario") or ""))
    except ServiceError as exc:
        _mark(message, status="handled", intent="error")
        return [_reply(message, f"I could not read your message: {exc.message}", role=MessageRole.SYSTEM,
                       code=exc.code)]
    _mark(message, status="handling", intent=intent.intent, command=intent.command, action=intent.action,
          confidence=intent.confidence, scenario=intent.scenario,
          **({"scripted": True, "label": intent.result.metadata.get("label")} if intent.scenario else {}))
    try:
        _dispatch(message, intent, pending=pending, membership=membership, tools=tools)
    except ServiceError as exc:
        _reply(message, f"I could not do that: {exc.message}", role=MessageRole.SYSTEM, code=exc.code)
    except Exception:
        logger.exception("handling message %s failed", message.pk)
        _reply(message, "Something went wrong while handling your message; it was logged.", role=MessageRole.SYSTEM,
               code="error")
    _mark(message, status="handled")
    return list(Message.objects.for_org(organization).filter(thread=thread, pk__gt=message.pk).order_by("id"))


def _dispatch(message: Message, intent: Intent, *, pending: dict[str, Any], membership: Membership,
              tools: list[Any]) -> None:
    kind = pending.get("kind")
    if kind == "action" and (intent.intent == "clarification" or (
            intent.intent == "simple_action" and intent.action == pending.get("action"))):
        _clear_pending(message.thread)
        merged = {**(pending.get("parameters") or {}), **intent.parameters}
        _simple_action(message, intent, action=str(pending.get("action")), parameters=merged, tools=tools)
        return
    if kind == "task_question" and intent.intent not in NEW_WORK:
        _answer_task_question(message, pending)
        return
    if kind and intent.intent in NEW_WORK:
        pass  # the person moved on; what was asked stays open (the task still waits for its answer)
    if kind == "action":
        _clear_pending(message.thread)
    if intent.intent == "question":
        _answer_question(message, intent)
    elif intent.intent == "simple_action":
        _simple_action(message, intent, action=intent.action, parameters=intent.parameters, tools=tools)
    elif intent.intent == "complex_task":
        _complex_task(message, intent, membership=membership)
    elif intent.intent == "memory_command":
        _memory_command(message, intent, membership=membership)
    elif intent.intent == "clarification":
        _reply(message, "I was not waiting for an answer. What would you like me to do?", intent="clarification")
    else:
        _converse(message)


def _clear_pending(thread: Thread) -> None:
    Thread.objects.for_org(thread.organization).filter(pk=thread.pk).update(pending={})
    thread.pending = {}


# --- answers -------------------------------------------------------------------------------


def _answer_question(message: Message, intent: Intent) -> None:
    organization = message.organization
    text, fact_ids = memory_text(organization=organization, query=message.content)
    system = prompts.fill(prompts.ASSISTANT, organization=organization.name)
    result = complete(
        organization=organization, user=message.author, role="assistant", purpose="answer",
        scenario=intent.scenario,
        messages=[{"role": "system", "content": system + "\n\nBusiness memory:\n" + prompts.memory_block(text)},
                  {"role": "user", "content": message.content}],
    )
    _reply(message, result.content.strip() or "I do not know.", result=result, intent="question",
           memory_facts=fact_ids)


def _converse(message: Message) -> None:
    organization = message.organization
    recent = list(Message.objects.for_org(organization).filter(thread=message.thread, pk__lt=message.pk,
                                                                role__in=[MessageRole.USER, MessageRole.ASSISTANT])
                  .order_by("-id")[:6])
    history = [{"role": m.role, "content": m.content} for m in reversed(recent)]
    system = prompts.fill(prompts.ASSISTANT, organization=organization.name)
    result = complete(organization=organization, user=message.author, role="assistant", purpose="answer",
                      messages=[{"role": "system", "content": system}, *history,
                                {"role": "user", "content": message.content}])
    _reply(message, result.content.strip() or "…", result=result, intent="conversation")


# --- a simple action -------------------------------------------------------------------------


def _simple_action(message: Message, intent: Intent, *, action: str, parameters: dict[str, Any],
                   tools: list[Any]) -> None:
    from tools.services.invocation import invoke_tool, schema_errors
    from tools.types import InvocationContext

    organization, thread = message.organization, message.thread
    tool = next((t for t in tools if t.name == action), None)
    if tool is None:
        _reply(message, f"I cannot do that here: {action or 'that action'} is not a tool you may use in this "
                        "organization.", intent="simple_action", code="unknown_action")
        return
    arguments = action_arguments(organization=organization, parameters=parameters, schema=tool.parameters)
    errors = schema_errors(tool, arguments)
    if errors or (intent.missing and intent.intent != "clarification"):
        question = intent.question if intent.question else (
            f"To {tool.title or tool.name}, I still need: {describe_errors(errors)}.")
        pending = {"kind": "action", "action": tool.name, "parameters": parameters, "request": message.content,
                   "question": question, "scenario": intent.scenario, "message": message.pk}
        Thread.objects.for_org(organization).filter(pk=thread.pk).update(pending=pending)
        thread.pending = pending
        _reply(message, question, intent="clarification", action=tool.name, missing=sorted(errors) or intent.missing,
               kind="question")
        return
    result = invoke_tool(
        organization=organization, actor=message.author, tool_name=tool.name, arguments=arguments,
        idempotency_key=f"chat:{message.pk}",
        context=InvocationContext(source="chat", metadata={"thread": thread.pk, "message": message.pk}),
    )
    _reply(message, action_report(tool.title or tool.name, result), role=MessageRole.TOOL,
           intent="simple_action", action=tool.name, outcome=result.outcome,
           tool_call=result.tool_call.pk if result.tool_call else None,
           approval=result.approval.pk if result.approval else None)


def action_report(name: str, result: Any) -> str:
    """What a tool call did, for the person who asked."""
    from tools.types import Outcome

    if result.ok:
        detail = result.result if isinstance(result.result, dict) else {}
        shown = {k: detail[k] for k in ("path", "download_url", "uid", "start", "recipients", "message_id")
                 if k in detail}
        return f"Done: {name}." + (f" {prompts.as_text(shown)}" if shown else "")
    if result.outcome == Outcome.NEEDS_APPROVAL:
        return (f"{name} needs approval first ({result.reason}). It runs as soon as approval "
                f"#{result.approval.pk if result.approval else '?'} is granted.")
    return f"{name} did not run: {result.reason or result.code}."


# --- work for the Manager ----------------------------------------------------------------------


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 120 else line[:117].rsplit(" ", 1)[0] + "…"


def _complex_task(message: Message, intent: Intent, *, membership: Membership) -> None:
    from agents.loop.manager import ai_task_execute
    from automation.models import ExecutionType, TaskSource
    from automation.services.tasks import task_create

    if not membership.has_scope(Scope.TASKS_WRITE):
        _reply(message, "That needs a task, and your role may not create tasks.", role=MessageRole.SYSTEM,
               code="forbidden")
        return
    organization = message.organization
    with transaction.atomic():
        task = task_create(
            organization=organization, actor=message.author, title=_title(message.content),
            description=message.content, source=TaskSource.CHAT, execution_type=ExecutionType.SEMI_AUTOMATED,
            executor="ai", parameters={"request": message.content, "thread": message.thread_id,
                                       "scenario": intent.scenario, "approve_plan": conf.chat_approve_plans()},
            ai_confidence=max(0.0, min(1.0, intent.confidence)), ai_context={"intent": intent.as_dict(),
                                                                           "message": message.pk},
        )
        _reply(message, f"On it: task #{task.pk} “{task.title}”. The Manager is planning it.", task=task.pk,
               intent="complex_task")
    answer = ai_task_execute(task=task, actor=message.author)
    status = answer.get("status")
    if status == "completed":
        return
    if status == "running":
        steps = ", ".join(s["step"] for s in answer.get("subtasks", []))
        _reply(message, f"Task #{task.pk} runs {len(answer.get('subtasks', []))} steps: {steps}.", task=task.pk,
               strategy=answer.get("strategy"))


def _answer_task_question(message: Message, pending: dict[str, Any]) -> None:
    from automation.models import BlockedKind, Task, TaskStatus
    from automation.services.tasks import task_resume

    organization = message.organization
    task_id = pending.get("task")
    work = AgentWork.objects.for_org(organization).filter(task_id=task_id).first()
    _clear_pending(message.thread)
    if work is None or work.waiting_for != Waiting.CLARIFICATION:
        _reply(message, "Thanks — that question is no longer open.", intent="clarification")
        return
    with transaction.atomic():
        locked = AgentWork.objects.for_org(organization).select_for_update().get(pk=work.pk)
        locked.waiting = {**locked.waiting, "answer": message.content}
        locked.save(update_fields=["waiting", "updated_at"])
        task = Task.objects.for_org(organization).select_for_update().get(pk=task_id)
        if task.status == TaskStatus.BLOCKED and task.blocked_kind == BlockedKind.PARKED:
            task_resume(task=task, actor=message.author, reason="the requester answered")
    _reply(message, f"Thanks, task #{task_id} goes on with your answer.", intent="clarification", task=task_id)


# --- memory commands --------------------------------------------------------------------------


def _memory_command(message: Message, intent: Intent, *, membership: Membership) -> None:
    from memory.services.commands import (
        memory_about,
        memory_clear_my_data,
        memory_forget_topic,
        memory_show_my_data,
    )

    organization, user = message.organization, message.author
    command = intent.command
    parameters = intent.parameters
    writes = command in ("remember", "forget", "clear_my_data")
    if writes and not membership.has_scope(Scope.MEMORY_WRITE):
        _reply(message, "Your role may not change what the assistant remembers.", role=MessageRole.SYSTEM,
               code="forbidden")
        return
    if command == "remember":
        text = _strip("remember", str(parameters.get("text") or message.content))
        _remember(message, text, scenario=intent.scenario)
        return
    if command == "forget":
        topic = _strip("forget", str(parameters.get("topic") or message.content))
        report = memory_forget_topic(organization=organization, topic=topic, actor=user)
        _reply(message, f"Forgotten everything about “{topic}”: {report.facts} facts, {report.messages} messages, "
                        f"{report.entities} entries, {report.conflicts} open questions removed.",
               intent="memory_command", command="forget", removed=report.as_dict())
        return
    if command == "about":
        topic = _strip("about", str(parameters.get("topic") or message.content))
        knowledge = memory_about(organization=organization, topic=topic)
        lines = [f"- {f.text}" for f in knowledge.facts]
        lines += [f"- {h.text}" for h in knowledge.hits[: max(0, 8 - len(lines))]]
        text = (f"What I know about {topic}:\n" + "\n".join(lines)) if lines else f"I know nothing about {topic}."
        _reply(message, text, intent="memory_command", command="about")
        return
    if command == "show_my_data":
        data = memory_show_my_data(organization=organization, user=user)
        facts = [f"- {f.text}" for f in data["facts"][:20]]
        text = (f"I hold {len(data['facts'])} facts and {len(data['messages'])} messages from or about you."
                + ("\n" + "\n".join(facts) if facts else ""))
        _reply(message, text, intent="memory_command", command="show_my_data")
        return
    if command == "clear_my_data":
        report = memory_clear_my_data(organization=organization, user=user, actor=user)
        _reply(message, f"Cleared: {report.facts} facts and {report.messages} messages from or about you.",
               intent="memory_command", command="clear_my_data", removed=report.as_dict())
        return
    _reply(message, "Which memory command? Remember, forget, what do you know about…, show my data, "
                    "or clear my data.", intent="memory_command")


def _remember(message: Message, text: str, *, scenario: str) -> None:
    from agents.services.learning import extract_facts, facts_write
    from memory.services.commands import memory_remember

    organization, user = message.organization, message.author
    try:
        facts, _ = extract_facts(organization=organization, user=user, text=text, scenario=scenario)
    except ServiceError:
        facts = []
    if facts:
        learned, conflicts = facts_write(organization=organization, actor=user, facts=facts,
                                         source_id=f"agents.message:{message.pk}", source_text=message.content,
                                         source_type="user")
        if conflicts:
            _reply(message, conflicts[0].question, intent="memory_command", command="remember",
                   kind="memory_conflict", conflict=conflicts[0].pk)
            return
        if learned.refused_secrets and not (learned.created or learned.reinforced):
            _reply(message, "I did not store that: it looks like a secret (a password, a card number or a key).",
                   intent="memory_command", command="remember", code="secret_refused")
            return
        if learned.created or learned.reinforced:
            _reply(message, f"Noted: {text}", intent="memory_command", command="remember",
                   facts=[*learned.created, *learned.reinforced])
            return
    result = memory_remember(organization=organization, actor=user, text=text)
    reply = result.conflict.question if result.conflict is not None else f"Noted: {text}"
    _reply(message, reply, intent="memory_command", command="remember", facts=[result.fact.pk])
