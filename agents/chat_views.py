"""Chat pages under /orgs/<slug>/chat/: conversations, one thread live, approvals, plan edits, quick actions.

Every form posts and redirects, so the pages work without JavaScript; static/chat.js sends the same forms
with fetch (``Accept: application/json``) and gets JSON back, and shows the thread live over its socket
(agents.consumers_chat). A thread is its owner's: another member's thread, or another organization's,
is "not found".
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import messages as flash
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.errors import InvalidInput, NotFound, ServiceError
from accounts.models import ApprovalRequest
from accounts.page_access import OrgAccess, org_page
from accounts.roles import Scope
from agents import chat_render, chat_state, conf
from agents.chat_stream import thread_task_places
from agents.models import Message, Plan, Thread
from agents.services.conversations import MAX_MESSAGE_CHARS, message_post, thread_create, thread_get
from automation.models import Task

THREADS_SHOWN = 50
MESSAGES_SHOWN = 400
TASK_ACTIONS = ("retry", "cancel")
ACTIVE = ("pending", "queued", "in_progress", "paused", "blocked")
_COPY_SUFFIX = re.compile(r"-[0-9]+(\.[A-Za-z0-9]+)$")


class MessageForm(forms.Form):
    content = forms.CharField(label="Message", max_length=MAX_MESSAGE_CHARS, strip=True,
                              widget=forms.Textarea(attrs={"rows": 2}))


class ReasonForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=2000, required=False, strip=True)


class RequiredReasonForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=2000, required=True, strip=True,
                             error_messages={"required": "Say why."})


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _render(request: HttpRequest, access: OrgAccess, template: str, context: dict[str, Any],
            status: int = 200) -> HttpResponse:
    from automation.views.common import render_org

    return render_org(request, access, template, context, status=status)


def _thread(access: OrgAccess, request: HttpRequest, thread_id: int) -> Thread:
    try:
        return thread_get(organization=access.organization, user=request.user,  # type: ignore[arg-type]
                          thread_id=thread_id)
    except NotFound as exc:
        raise Http404("No such conversation.") from exc


def _threads(access: OrgAccess, request: HttpRequest) -> list[Thread]:
    return list(Thread.objects.for_org(access.organization).filter(user=request.user)
                .order_by("-updated_at", "-id")[:THREADS_SHOWN])


def _thread_url(access: OrgAccess, thread: Thread, anchor: str = "") -> str:
    url = reverse("chat-thread", kwargs={"org_slug": access.organization.slug, "thread_id": thread.pk})
    return f"{url}#{anchor}" if anchor else url


def _error_json(message: str, status: int, field: str = "") -> JsonResponse:
    return JsonResponse({"error": message, "field": field}, status=status)


# --- conversations ---------------------------------------------------------------------------------


@org_page(Scope.AGENTS_USE)
@require_http_methods(["GET", "POST"])
def chat_home(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    """The user's conversations; the message box starts a new one."""
    form = MessageForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            thread = thread_create(organization=access.organization, user=request.user)  # type: ignore[arg-type]
            message = message_post(thread=thread, user=request.user,  # type: ignore[arg-type]
                                   content=form.cleaned_data["content"])
            if _wants_json(request):
                return JsonResponse({"thread": thread.pk, "url": _thread_url(access, thread), "message": message.pk},
                                    status=201)
            return redirect(_thread_url(access, thread))
        status = 400
        if _wants_json(request):
            return _error_json("; ".join(form.errors.get("content", [])), 400, "content")
    return _render(request, access, "chat/home.html", {"threads": _threads(access, request), "form": form},
                   status=status)


def _thread_page(request: HttpRequest, access: OrgAccess, thread: Thread, *, form: MessageForm | None = None,
                 error: str = "", status: int = 200) -> HttpResponse:
    recent = list(Message.objects.for_org(access.organization).filter(thread=thread).order_by("-id")[:MESSAGES_SHOWN])
    recent.reverse()
    thread.organization = access.organization
    viewer = request.user
    rendered = [chat_render.render_message(m, viewer=viewer, thread=thread, request=request)  # type: ignore[arg-type]
                for m in recent]
    runs = chat_state.runs_of_thread(thread)
    cursor = runs.cursor
    cursor.message = recent[-1].pk if recent else 0
    pending = thread.pending or {}
    slug = access.organization.slug
    page_data = {
        "csrf": get_token(request),
        "ws": f"/ws/orgs/{slug}/chat/threads/{thread.pk}/",
        "cursor": cursor.as_json(),
        "runs": [r.as_json() for r in runs.runs],
        "revisionsOf": conf.max_revisions(),
        "statusUrl": reverse("chat-run-status", kwargs={"org_slug": slug, "thread_id": thread.pk, "task_id": 0}),
        "taskUrl": reverse("task-detail", kwargs={"org_slug": slug, "pk": 0}),
        "actionUrl": reverse("chat-task-action", kwargs={"org_slug": slug, "thread_id": thread.pk, "task_id": 0,
                                                         "action": "retry"}),
        "compareUrl": reverse("chat-compare", kwargs={"org_slug": slug, "thread_id": thread.pk, "task_id": 0}),
        "canExecute": access.can(Scope.TASKS_EXECUTE),
        "canWrite": access.can(Scope.TASKS_WRITE),
        "canReadTasks": access.can(Scope.TASKS_READ),
    }
    context = {
        "thread": thread,
        "threads": _threads(access, request),
        "rendered": rendered,
        "earlier": len(recent) == MESSAGES_SHOWN,
        "runs": runs.runs,
        "page_data": page_data,
        "question": pending.get("question") if pending.get("kind") in ("task_question", "action") else "",
        "form": form or MessageForm(),
        "error": error,
        "can_execute": access.can(Scope.TASKS_EXECUTE),
        "can_write": access.can(Scope.TASKS_WRITE),
        "can_read_tasks": access.can(Scope.TASKS_READ),
    }
    return _render(request, access, "chat/thread.html", context, status=status)


@org_page(Scope.AGENTS_USE)
@require_GET
def chat_thread(request: HttpRequest, access: OrgAccess, thread_id: int) -> HttpResponse:
    """One conversation: its messages, the runs it started (live over the thread's socket), the message box."""
    return _thread_page(request, access, _thread(access, request, thread_id))


@org_page(Scope.AGENTS_USE)
@require_POST
def chat_post(request: HttpRequest, access: OrgAccess, thread_id: int) -> HttpResponse:
    """Post a message to the thread (the answer comes over the socket, or on the next page load)."""
    thread = _thread(access, request, thread_id)
    form = MessageForm(request.POST)
    if not form.is_valid():
        if _wants_json(request):
            return _error_json("; ".join(form.errors.get("content", [])), 400, "content")
        return _thread_page(request, access, thread, form=form, status=400)
    try:
        message = message_post(thread=thread, user=request.user,  # type: ignore[arg-type]
                               content=form.cleaned_data["content"])
    except InvalidInput as exc:
        if _wants_json(request):
            return _error_json(exc.message, 400, "content")
        form.add_error("content", exc.message)
        return _thread_page(request, access, thread, form=form, status=400)
    if _wants_json(request):
        return JsonResponse(chat_render.message_item(message, viewer=request.user, thread=thread),  # type: ignore[arg-type]
                            status=201)
    return redirect(_thread_url(access, thread, f"msg-{message.pk}"))


# --- approvals from the thread ----------------------------------------------------------------------


def _approval_of_thread(access: OrgAccess, thread: Thread, approval_id: int) -> ApprovalRequest:
    """An approval the thread's messages name (any other is "not found" here; the inbox decides those)."""
    named = Message.objects.for_org(access.organization).filter(thread=thread, metadata__approval=approval_id)
    approval = ApprovalRequest.objects.for_org(access.organization).filter(pk=approval_id).first()
    if approval is None or not named.exists():
        raise Http404("No such approval in this conversation.")
    return approval


@org_page(Scope.AGENTS_USE)
@require_POST
def chat_decide(request: HttpRequest, access: OrgAccess, thread_id: int, approval_id: int,
                decision: str) -> HttpResponse:
    """Approve or reject from the card, through ``approval_decide`` (scope, expiry, four-eyes rules)."""
    from accounts.services.approvals import approval_decide

    thread = _thread(access, request, int(thread_id))
    approval = _approval_of_thread(access, thread, int(approval_id))
    approve = decision == "approve"
    form = (ReasonForm if approve else RequiredReasonForm)(request.POST)
    error, status = "", 200
    if not form.is_valid():
        error, status = "Say why it is rejected." if not approve else "The reason is too long.", 400
    elif not access.can(approval.required_scope):
        error, status = f"Deciding this needs the {approval.required_scope} scope.", 403
    else:
        try:
            approval = approval_decide(approval=approval, actor=request.user,  # type: ignore[arg-type]
                                       approve=approve, reason=form.cleaned_data["reason"])
        except ServiceError as exc:
            error, status = exc.message, exc.status_code
    if _wants_json(request):
        approval = ApprovalRequest.objects.for_org(access.organization).select_related(
            "organization", "decided_by").get(pk=approval.pk)
        card = chat_render.render_approval(approval, viewer=request.user, thread=thread,  # type: ignore[arg-type]
                                           request=request)
        return JsonResponse({"type": "approval", "id": approval.pk, "status": approval.status, "html": card,
                             "error": error}, status=status)
    if error:
        return _thread_page(request, access, thread, error=error, status=status)
    flash.success(request, f"{'Approved' if approve else 'Rejected'}: {approval.title}")
    return redirect(_thread_url(access, thread, f"approval-{approval.pk}"))


# --- a person's version of the plan -----------------------------------------------------------------


class PlanStepForm(forms.Form):
    title = forms.CharField(label="Title", max_length=300, strip=True)
    instructions = forms.CharField(label="Instructions", max_length=4000, required=False, strip=True,
                                   widget=forms.Textarea(attrs={"rows": 2}))
    estimate_minutes = forms.FloatField(label="Estimate (minutes)", min_value=0, max_value=10_000, required=False)
    needs_approval = forms.BooleanField(label="A person approves the result", required=False)
    remove = forms.BooleanField(label="Remove this step", required=False)


def _plan_forms(plan: Plan, data: Any = None) -> list[tuple[dict[str, Any], PlanStepForm]]:
    rows = []
    for step in plan.steps:
        initial = {"title": step.get("title", ""), "instructions": step.get("instructions", ""),
                   "estimate_minutes": step.get("estimate_minutes") or 0,
                   "needs_approval": bool(step.get("needs_approval"))}
        rows.append((step, PlanStepForm(data, prefix=f"step-{step['id']}", initial=initial)))
    return rows


@org_page(Scope.AGENTS_USE)
@require_http_methods(["GET", "POST"])
def chat_plan_edit(request: HttpRequest, access: OrgAccess, thread_id: int, plan_id: int) -> HttpResponse:
    """Edit the plan before it runs: titles, instructions, estimates, approvals; remove steps. A new version."""
    from agents.loop.manager import plan_edit

    thread = _thread(access, request, thread_id)
    access.require(Scope.TASKS_WRITE)
    plan = Plan.objects.for_org(access.organization).filter(pk=plan_id).first()
    if plan is None or plan.task_id not in thread_task_places(thread):
        raise Http404("No such plan in this conversation.")
    summary = forms.CharField(max_length=2000, required=False)
    rows = _plan_forms(plan, request.POST if request.method == "POST" else None)
    error, status = "", 200
    if request.method == "POST":
        if all(f.is_valid() for _, f in rows):
            removed = {s["id"] for s, f in rows if f.cleaned_data["remove"]}
            steps = []
            for step, f in rows:
                if step["id"] in removed:
                    continue
                data = f.cleaned_data
                steps.append({**step, "title": data["title"], "instructions": data["instructions"],
                              "estimate_minutes": data["estimate_minutes"] or 0,
                              "needs_approval": data["needs_approval"],
                              "depends_on": [d for d in step.get("depends_on", []) if d not in removed]})
            try:
                text = summary.clean(request.POST.get("summary", plan.summary))
                new = plan_edit(plan=plan, actor=request.user, steps=steps, summary=text)  # type: ignore[arg-type]
            except forms.ValidationError as exc:
                error, status = "; ".join(exc.messages), 400
            except ServiceError as exc:
                error, status = exc.message, exc.status_code
            else:
                flash.success(request, f"Plan v{new.version} saved.")
                return redirect(_thread_url(access, thread))
        else:
            error, status = "Check the steps marked below.", 400
    return _render(request, access, "chat/plan_edit.html",
                   {"thread": thread, "plan": plan, "rows": rows, "error": error,
                    "summary": request.POST.get("summary", plan.summary)}, status=status)


# --- quick actions ------------------------------------------------------------------------------------


def _task_of_thread(access: OrgAccess, thread: Thread, task_id: int) -> Task:
    if task_id not in thread_task_places(thread):
        raise Http404("No such task in this conversation.")
    return Task.objects.for_org(access.organization).get(pk=task_id)


@org_page(Scope.AGENTS_USE)
@require_GET
def chat_run_status(request: HttpRequest, access: OrgAccess, thread_id: int, task_id: int) -> HttpResponse:
    """Check status: the run's state now (JSON for the page's script; the thread page otherwise)."""
    thread = _thread(access, request, thread_id)
    task = _task_of_thread(access, thread, task_id)
    root_id = task.parent_id or task.pk
    runs = chat_state.runs_of_thread(thread)
    run = next((r for r in runs.runs if r.root == root_id), None)
    if run is None:
        raise Http404("No such run.")
    if _wants_json(request):
        return JsonResponse({"run": run.as_json(), "cursor": runs.cursor.as_json()})
    return redirect(_thread_url(access, thread, f"run-{root_id}"))


@org_page(Scope.AGENTS_USE)
@require_POST
def chat_task_action(request: HttpRequest, access: OrgAccess, thread_id: int, task_id: int,
                     action: str) -> HttpResponse:
    """Retry (a failed run) or cancel (a running one), through the task services."""
    from automation.services.tasks import task_cancel, task_retry

    thread = _thread(access, request, thread_id)
    if action not in TASK_ACTIONS:
        raise Http404("No such action.")
    task = _task_of_thread(access, thread, task_id)
    access.require(Scope.TASKS_EXECUTE if action == "retry" else Scope.TASKS_WRITE)
    error, status = "", 200
    try:
        if action == "retry":
            task_retry(task=task, actor=request.user)  # type: ignore[arg-type]
        else:
            task_cancel(task=task, actor=request.user, reason="cancelled from the chat")  # type: ignore[arg-type]
    except ServiceError as exc:
        error, status = exc.message, exc.status_code
    if _wants_json(request):
        return JsonResponse({"ok": not error, "error": error}, status=status)
    if error:
        return _thread_page(request, access, thread, error=error, status=status)
    flash.success(request, f"{'Retry requested' if action == 'retry' else 'Cancelled'}: #{task.pk} {task.title}")
    return redirect(_thread_url(access, thread, f"run-{task.parent_id or task.pk}"))


# --- revisions side by side -------------------------------------------------------------------------------


def _revisions(access: OrgAccess, task: Task) -> list[dict[str, Any]]:
    """Each revision of a step: the Employee's report, the Supervisor's verdict, the files it wrote."""
    from agents.models import AgentWork

    work = AgentWork.objects.for_org(access.organization).filter(task=task).first()
    if work is None:
        return []
    rows: dict[int, dict[str, Any]] = {}
    for verdict in work.verdicts or []:
        number = int(verdict.get("revision") or 0)
        rows[number] = {"number": number, "report": str(verdict.get("report") or ""),
                        "verdict": str(verdict.get("verdict") or ""), "feedback": str(verdict.get("feedback") or "")}
    if isinstance(work.output, dict) and work.output.get("revision"):
        number = int(work.output["revision"])
        rows.setdefault(number, {"number": number, "report": str(work.output.get("report") or ""), "verdict": "",
                                 "feedback": ""})
    for row in rows.values():
        row["files"] = chat_render.step_files(access.organization, task_id=task.pk, revision=row["number"])
        row["text"] = _revision_text(access, row)
    return [rows[k] for k in sorted(rows)]


def _revision_text(access: OrgAccess, row: dict[str, Any]) -> str:
    """What is compared: the report, then the text of each document the revision wrote."""
    parts = [row["report"]]
    for produced in row["files"]:
        if produced.kind == "document":
            data = chat_render.read_file(access.organization.pk, produced.path)
            if data is not None:
                # "letter-2.docx" is the second revision's copy of "letter.docx": compare them under one name.
                parts.append("--- " + _COPY_SUFFIX.sub(r"\1", produced.name) + " ---")
                parts.extend(chat_render.docx_paragraphs(data))
    return "\n".join(parts)


@org_page(Scope.AGENTS_USE)
@require_GET
def chat_compare(request: HttpRequest, access: OrgAccess, thread_id: int, task_id: int) -> HttpResponse:
    """Two revisions of a step (report and documents), or two versions of a plan, side by side."""
    from agents.loop.manager import plan_text

    thread = _thread(access, request, thread_id)
    task = _task_of_thread(access, thread, task_id)
    versions: list[dict[str, Any]] = []
    kind = "revision"
    revisions = _revisions(access, task)
    if len(revisions) >= 2 or task.parent_id is not None:
        versions = [{"number": r["number"], "label": f"Revision {r['number']}", "text": r["text"], "row": r}
                    for r in revisions]
    else:
        kind = "plan"
        plans = Plan.objects.for_org(access.organization).filter(task=task).order_by("version")
        versions = [{"number": p.version, "label": f"Plan v{p.version} ({p.get_status_display()})",
                     "text": plan_text(p), "row": None} for p in plans]
    numbers = [v["number"] for v in versions]
    try:
        left = int(request.GET.get("a") or (numbers[-2] if len(numbers) >= 2 else 0))
        right = int(request.GET.get("b") or (numbers[-1] if numbers else 0))
    except ValueError:
        left = right = -1
    if len(numbers) >= 2 and (left not in numbers or right not in numbers):
        return _render(request, access, "chat/compare.html",
                       {"thread": thread, "task": task, "versions": versions, "kind": kind,
                        "error": f"Choose two of: {', '.join(str(n) for n in numbers)}."}, status=400)
    by_number = {v["number"]: v for v in versions}
    rows = chat_render.side_by_side(by_number[left]["text"], by_number[right]["text"]) if len(numbers) >= 2 else []
    return _render(request, access, "chat/compare.html", {
        "thread": thread, "task": task, "versions": versions, "kind": kind, "rows": rows,
        "left": by_number.get(left), "right": by_number.get(right), "error": "",
        "changed": sum(1 for r in rows if r.kind != "equal"),
    })
