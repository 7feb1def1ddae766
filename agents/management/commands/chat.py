"""The terminal chat: talk to the assistant of an organization and watch the AI roles work.

    python manage.py chat --org acme --user dana@acme.example [--new] [--inline]

Type a message, or a command:

  /status          open requests of this thread, what each waits for, pending approvals
  /task <id>       a task: status, plan steps, the latest events
  /approve <id>    approve an approval (if your role may decide it); /reject <id> <reason>
  /clear           start a new thread
  /exit            quit

Messages are handled by the Celery workers, as in the web chat; what the
Manager, the Employees, the Supervisor, the tools and the system write to the
thread is printed as it arrives (the thread is polled with ``?after=``-style
reads). ``--inline`` handles the message and runs the organization's queued
work in this process instead (no worker needed: an offline demo).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections

from accounts.errors import ServiceError
from accounts.models import ApprovalRequest, ApprovalStatus, Membership, Organization, User
from accounts.roles import Scope
from accounts.services.approvals import approval_decide
from accounts.tenancy import org_scope
from agents.llm.types import SCRIPTED_LABEL
from agents.models import AgentWork, Message, Plan, Thread, WorkKind
from agents.selectors import latest_thread, messages_after
from agents.services.conversations import message_post, thread_create
from automation.models import Task, TaskEvent, TaskStatus

POLL_SECONDS = 0.4
ROLE_COLORS = {"user": "37", "assistant": "36", "manager": "35", "employee": "34", "supervisor": "33", "tool": "32",
               "system": "31"}
HELP = "Commands: /status, /task <id>, /approve <id>, /reject <id> <reason>, /clear, /exit"


class Command(BaseCommand):
    help = "Chat with the organization's assistant in the terminal and watch the AI roles' progress."
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="The organization (slug).")
        parser.add_argument("--user", required=True, help="Who you are (a member's email).")
        parser.add_argument("--new", action="store_true", help="Start a new thread instead of the latest one.")
        parser.add_argument("--inline", action="store_true",
                            help="Handle messages and run queued work in this process (no Celery worker needed).")

    # --- set-up ------------------------------------------------------------------------------

    def handle(self, *args: Any, **options: Any) -> None:
        organization = Organization.objects.filter(slug=options["org"]).first()
        user = User.objects.filter(email__iexact=options["user"], is_active=True).first()
        if organization is None or user is None:
            raise CommandError("no such organization or user")
        membership = Membership.objects.for_org(organization).filter(user=user).first()
        if membership is None or not membership.has_scope(Scope.AGENTS_USE):
            raise CommandError(f"{user.email} may not use the assistant in {organization.slug}")
        self.organization, self.user, self.membership = organization, user, membership
        self.inline = options["inline"]
        self.color = not options["no_color"] and sys.stdout.isatty()
        self.stdin: TextIO = options.get("stdin") or sys.stdin
        self.lock = threading.Lock()
        self.label_shown = False
        with org_scope(organization):
            self.thread = (None if options["new"] else latest_thread(organization=organization, user=user)) \
                or thread_create(organization=organization, user=user)
            self.last_id = 0
            self.say(f"Chatting with {organization.name} as {user.email} (thread #{self.thread.pk}). {HELP}")
            self.show_new(replay=not options["new"])
            self.loop()

    def loop(self) -> None:
        stop = threading.Event()
        watcher = None
        if not self.inline:
            watcher = threading.Thread(target=self.watch, args=(stop,), name="chat-watch", daemon=True)
            watcher.start()
        try:
            for raw in self.stdin:
                line = raw.strip()
                if not line:
                    continue
                if line.startswith("/"):
                    if not self.command(line):
                        break
                    continue
                self.post(line)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            if watcher is not None:
                watcher.join(timeout=2)
        self.say("bye")

    # --- output ------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        with self.lock:
            self.stdout.write(text)
            self.stdout.flush()

    def render(self, message: Message) -> str:
        metadata = message.metadata or {}
        role = message.role
        tag = f"[{role}]"
        if self.color:
            tag = f"\033[{ROLE_COLORS.get(role, '0')}m{tag}\033[0m"
        lines = []
        if metadata.get("scripted") and not self.label_shown:
            lines.append(f"  ({SCRIPTED_LABEL})")
            self.label_shown = True
        text = message.content
        extras = []
        if message.task_id:
            extras.append(f"task #{message.task_id}")
        asks = str(metadata.get("event", "")).endswith(("approval_requested", "budget_paused"))
        if metadata.get("approval") and asks:
            extras.append(f"approval #{metadata['approval']}: /approve {metadata['approval']}")
        if metadata.get("kind") == "question":
            extras.append("answer here")
        suffix = f"  ({'; '.join(extras)})" if extras else ""
        lines.insert(0, f"{tag} {text}{suffix}")
        return "\n".join(lines)

    def show_new(self, *, replay: bool = True) -> int:
        rows = messages_after(thread=self.thread, after=self.last_id, limit=500)
        for message in rows:
            self.last_id = message.pk
            if replay or message.role != "user":
                self.say(self.render(message))
        return len(rows)

    def watch(self, stop: threading.Event) -> None:
        try:
            with org_scope(self.organization):
                while not stop.wait(POLL_SECONDS):
                    try:
                        self.show_new(replay=False)
                    except DatabaseError as exc:  # the database went away briefly: keep watching
                        self.stderr.write(f"(could not read the thread: {exc})")
        finally:
            connections.close_all()

    # --- messages ----------------------------------------------------------------------------

    def post(self, text: str) -> None:
        try:
            message = message_post(thread=self.thread, user=self.user, content=text, handle=not self.inline)
        except ServiceError as exc:
            self.say(f"(not sent: {exc.message})")
            return
        if self.inline:
            self.last_id = max(self.last_id, message.pk)
            self.run_inline(message)

    def run_inline(self, message: Message) -> None:
        from agents.services.chat import message_handle
        from agents.services.learning import learn_from_message

        message_handle(message=message)
        self.show_new(replay=False)
        with contextlib.suppress(ServiceError):
            learn_from_message(message=message)
        self.drain()
        self.show_new(replay=False)

    def drain(self, rounds: int = 200) -> None:
        """Run the organization's queued work here until none is due (inline mode)."""
        from django.utils import timezone

        from automation.services import runner

        for _ in range(rounds):
            due = (Task.objects.for_org(self.organization).filter(status=TaskStatus.QUEUED)
                   .exclude(next_attempt_at__gt=timezone.now()).order_by("pk").first())
            if due is None:
                return
            runner.process(organization_id=self.organization.pk, task_id=due.pk, worker="terminal-chat")
            self.show_new(replay=False)

    # --- commands ------------------------------------------------------------------------------

    def command(self, line: str) -> bool:
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        if name in ("/exit", "/quit"):
            return False
        if name == "/help":
            self.say(HELP)
        elif name == "/clear":
            self.thread = thread_create(organization=self.organization, user=self.user)
            self.last_id = 0
            self.say(f"(new thread #{self.thread.pk})")
        elif name == "/status":
            self.status()
        elif name == "/task":
            if not rest.isdigit():
                self.say("usage: /task <id>")
            else:
                self.task(int(rest))
        elif name in ("/approve", "/reject"):
            number, _, reason = rest.partition(" ")
            if not number.isdigit():
                self.say(f"usage: {name} <id>" + (" <reason>" if name == "/reject" else ""))
            else:
                self.decide(int(number), approve=name == "/approve", reason=reason.strip())
                if self.inline:
                    self.drain()
                    self.show_new(replay=False)
        else:
            self.say(f"unknown command {name}. {HELP}")
        return True

    def _requests(self) -> list[Task]:
        ids = AgentWork.objects.for_org(self.organization).filter(thread=self.thread, kind=WorkKind.REQUEST) \
            .values_list("task_id", flat=True)
        return list(Task.objects.for_org(self.organization).filter(pk__in=list(ids)).order_by("pk"))

    def status(self) -> None:
        requests = self._requests()
        thread = Thread.objects.for_org(self.organization).get(pk=self.thread.pk)
        if thread.pending:
            self.say(f"waiting for your answer: {thread.pending.get('question', '')}")
        if not requests:
            self.say("no requests in this thread")
        for task in requests:
            work = AgentWork.objects.for_org(self.organization).filter(task=task).first()
            waiting = f", waiting for {work.get_waiting_for_display().lower()}" if work and work.waiting_for else ""
            reason = task.blocked_reason or task.failure_reason
            self.say(f"#{task.pk} {task.title} — {task.status}{waiting}" + (f": {reason}" if reason else ""))
        approvals = ApprovalRequest.objects.for_org(self.organization).filter(status=ApprovalStatus.PENDING) \
            .order_by("id")
        for approval in approvals:
            self.say(f"approval #{approval.pk} ({approval.kind}): {approval.title}")

    def task(self, task_id: int) -> None:
        task = Task.objects.for_org(self.organization).filter(pk=task_id).first()
        if task is None:
            self.say("no such task")
            return
        self.say(f"#{task.pk} {task.title} — {task.status} ({task.executor}, {task.execution_type})")
        if task.blocked_reason or task.failure_reason:
            self.say(f"  {task.blocked_reason or task.failure_reason}")
        plan = Plan.objects.for_org(self.organization).filter(task=task).order_by("-version").first()
        if plan is not None:
            steps = {w.step_id: w.task for w in AgentWork.objects.for_org(self.organization)
                     .filter(root=task, plan=plan, kind=WorkKind.STEP).select_related("task")}
            self.say(f"  plan v{plan.version} ({plan.status}, {plan.strategy}): {plan.summary}")
            for step in plan.steps:
                child = steps.get(step["id"])
                state = f"#{child.pk} {child.status}" if child else "not started"
                self.say(f"   - {step['id']}: {step['title']} [{state}]")
        children = list(Task.objects.for_org(self.organization).filter(parent=task).values_list("pk", flat=True))
        events = TaskEvent.objects.for_org(self.organization).filter(task_id__in=[task.pk, *children]) \
            .order_by("-created_at", "-id")[:15]
        for event in reversed(list(events)):
            text = (event.payload or {}).get("text") or (event.payload or {}).get("to") or ""
            self.say(f"  {event.created_at:%H:%M:%S} #{event.task_id}.{event.sequence} {event.type} "
                     f"{str(text)[:100]}")

    def decide(self, approval_id: int, *, approve: bool, reason: str) -> None:
        approval = ApprovalRequest.objects.for_org(self.organization).filter(pk=approval_id).first()
        if approval is None:
            self.say("no such approval")
            return
        try:
            approval_decide(approval=approval, actor=self.user, approve=approve, reason=reason)
        except ServiceError as exc:
            self.say(f"(not decided: {exc.message})")
            return
        self.say(f"approval #{approval_id} {'approved' if approve else 'rejected'}")
