"""How the chat shows things: Markdown made safe, highlighted code, who speaks, approval cards, produced files.

Every message is rendered here, on the server, for the page and for the socket alike, so a reload shows
word for word what arrived live. Markdown from people and from models goes through nh3 (an allow-list
HTML sanitizer): no script, no inline style, no event handler, links only to http(s), mailto or this site.
"""

from __future__ import annotations

import difflib
import html
import io
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree import ElementTree

import markdown
import nh3
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from pygments.token import STANDARD_TYPES

from accounts.models import ApprovalRequest, ApprovalStatus, Membership, Organization, User
from accounts.roles import Scope
from agents.models import Message, MessageRole, Thread

# --- who speaks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Speaker:
    role: str
    label: str
    icon: str  # SVG path data (24x24, stroked)
    doing: str  # what the thinking indicator says


_ICONS = {
    "user": '<circle cx="12" cy="8" r="4"/><path d="M4 21c0-4.4 3.6-8 8-8s8 3.6 8 8"/>',
    "assistant": '<path d="M12 3l2 6 6 2-6 2-2 6-2-6-6-2 6-2z"/>',
    "manager": '<rect x="5" y="4" width="14" height="17" rx="2"/><path d="M9 2.5h6v3H9z"/>'
               '<path d="M8.5 13l2.5 2.5 4.5-5"/>',
    "employee": '<path d="M14.7 6.3a4 4 0 0 0-5.4 5.4L3 18l3 3 6.3-6.3a4 4 0 0 0 5.4-5.4l-2.5 2.5-2.5-.5-.5-2.5z"/>',
    "supervisor": '<circle cx="10.5" cy="10.5" r="6"/><path d="M15 15l6 6"/><path d="M8 10.5l2 2 3-3.5"/>',
    "tool": '<path d="M13 2L4 14h7l-1 8 9-12h-7z"/>',
    "system": '<circle cx="12" cy="12" r="9"/><path d="M12 11v6M12 7.5v.5"/>',
}

SPEAKERS: dict[str, Speaker] = {
    MessageRole.USER: Speaker("user", "You", _ICONS["user"], "is writing"),
    MessageRole.ASSISTANT: Speaker("assistant", "Assistant", _ICONS["assistant"], "is answering"),
    MessageRole.MANAGER: Speaker("manager", "Manager", _ICONS["manager"], "is planning"),
    MessageRole.EMPLOYEE: Speaker("employee", "Employee", _ICONS["employee"], "is working"),
    MessageRole.SUPERVISOR: Speaker("supervisor", "Supervisor", _ICONS["supervisor"], "is reviewing"),
    MessageRole.TOOL: Speaker("tool", "Tool", _ICONS["tool"], "is running"),
    MessageRole.SYSTEM: Speaker("system", "System", _ICONS["system"], ""),
}


def speaker(role: str) -> Speaker:
    return SPEAKERS.get(role, SPEAKERS[MessageRole.SYSTEM])


def icon_svg(role: str) -> SafeString:
    """The role's icon as inline SVG (decorative: the label says who it is)."""
    paths = _ICONS.get(role, _ICONS["system"])
    return mark_safe(  # noqa: S308 - constant markup from _ICONS only
        '<svg class="role-icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false" '
        'fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">'
        f"{paths}</svg>"
    )


# --- Markdown, sanitized ------------------------------------------------------------------------------

_TAGS = {
    "p", "br", "strong", "em", "b", "i", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a", "hr",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "span", "div",
}
_PYGMENTS_CLASSES = {name for name in STANDARD_TYPES.values() if name}
_LIST_LINE = re.compile(r"^\s{0,3}(?:\d{1,3}[.)]|[-*+])\s+\S")


def _loosen_lists(text: str) -> str:
    """Put a blank line before a list that follows a paragraph line (people and models write lists that way)."""
    out: list[str] = []
    fence = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        previous = out[-1] if out else ""
        if not fence and previous.strip():
            starts_list = _LIST_LINE.match(line) and not _LIST_LINE.match(previous)
            ends_list = _LIST_LINE.match(previous) and line.strip() and not _LIST_LINE.match(line) \
                and not line.startswith((" ", "\t"))
            if starts_list or ends_list:
                out.append("")
        out.append(line)
    return "\n".join(out)


def render_markdown(text: str) -> SafeString:
    """Markdown to safe HTML: fenced code highlighted by Pygments (CSS classes), then sanitized by nh3."""
    converter = markdown.Markdown(
        extensions=["fenced_code", "tables", "sane_lists", "nl2br", "codehilite"],
        extension_configs={"codehilite": {"css_class": "highlight", "guess_lang": False, "use_pygments": True}},
        output_format="html",
    )
    converter.inlinePatterns.deregister("automail")  # "<id@host>" in a tool result is an id, not an address
    raw = converter.convert(_loosen_lists(text or ""))
    clean = nh3.clean(
        raw,
        tags=_TAGS,
        attributes={"a": {"href", "title"}, "th": {"align"}, "td": {"align"}},
        allowed_classes={"span": _PYGMENTS_CLASSES, "div": {"highlight"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return mark_safe(clean)  # noqa: S308 - sanitized by nh3 with the allow-list above


# --- files produced by tools --------------------------------------------------------------------------

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp")
PREVIEW_PARAGRAPHS = 10
PREVIEW_CHARS = 900
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_previews: OrderedDict[tuple[int, str, int], list[str]] = OrderedDict()


@dataclass(frozen=True)
class ProducedFile:
    name: str
    path: str
    url: str
    size: int
    kind: str  # image, document, file
    preview: tuple[str, ...] = ()


def docx_paragraphs(data: bytes, *, limit: int = 400) -> list[str]:
    """The text of a .docx, one string per non-empty paragraph (at most ``limit``)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            xml = archive.read("word/document.xml")
        root = ElementTree.fromstring(xml)  # noqa: S314 - our own generated files; no DTDs are processed
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError):
        return []
    paragraphs = []
    for paragraph in root.iter(f"{_W}p"):
        text = "".join(node.text or "" for node in paragraph.iter(f"{_W}t")).strip()
        if text:
            paragraphs.append(text)
            if len(paragraphs) >= limit:
                break
    return paragraphs


def read_file(organization_id: int, path: str, limit: int = 5 * 1024 * 1024) -> bytes | None:
    from tools.errors import ToolError
    from tools.storage import storage_for

    try:
        return storage_for(organization_id).read(path, limit=limit)
    except ToolError:
        return None


def _first_page(organization_id: int, path: str, size: int) -> list[str]:
    """The opening paragraphs of a .docx (cheap: the first page's worth of text; cached per process)."""
    key = (organization_id, path, size)
    if key in _previews:
        return _previews[key]
    data = read_file(organization_id, path)
    lines: list[str] = []
    if data is not None:
        total = 0
        for text in docx_paragraphs(data, limit=PREVIEW_PARAGRAPHS):
            lines.append(text[: PREVIEW_CHARS - total])
            total += len(lines[-1])
            if total >= PREVIEW_CHARS:
                break
    _previews[key] = lines
    while len(_previews) > 500:
        _previews.popitem(last=False)
    return lines


def produced_file(organization_id: int, result: Any) -> ProducedFile | None:
    """What a tool result says it wrote, if it wrote a file with a download link."""
    if not isinstance(result, dict) or not isinstance(result.get("path"), str) \
            or not isinstance(result.get("download_url"), str):
        return None
    path, url = result["path"], result["download_url"]
    if not url.startswith("/"):
        return None  # only this site's own download links
    name = path.rsplit("/", 1)[-1]
    size = int(result.get("size") or 0)
    lower = name.lower()
    if lower.endswith(IMAGE_EXTENSIONS):
        return ProducedFile(name, path, url, size, "image")
    if lower.endswith(".docx"):
        return ProducedFile(name, path, url, size, "document", tuple(_first_page(organization_id, path, size)))
    return ProducedFile(name, path, url, size, "file")


def files_of_calls(organization: Organization, call_ids: list[int]) -> list[ProducedFile]:
    from tools.models import ToolCall

    files = []
    for call in ToolCall.objects.for_org(organization).filter(pk__in=call_ids).order_by("id"):
        found = produced_file(organization.pk, call.result)
        if found is not None:
            files.append(found)
    return files


# --- approvals ----------------------------------------------------------------------------------------


def _viewer_scopes(approval: ApprovalRequest, viewer: User | None) -> frozenset[str]:
    if viewer is None:
        return frozenset()
    membership = Membership.objects.for_org(approval.organization).filter(user=viewer).first()
    return membership.scopes if membership is not None else frozenset()


def _can_decide(approval: ApprovalRequest, viewer: User | None, scopes: frozenset[str]) -> bool:
    if viewer is None or approval.status != ApprovalStatus.PENDING or approval.required_scope not in scopes:
        return False
    return not (approval.financial and approval.requested_by_id == viewer.pk)


def approval_context(approval: ApprovalRequest, *, viewer: User | None, thread: Thread | None) -> dict[str, Any]:
    """What an approval card shows: the request, its state, the buttons the viewer may use, the files to read."""
    from agents.models import Plan, PlanStatus

    organization = approval.organization
    plan = None
    if approval.kind == "plan" and approval.subject_id.isdigit():
        plan = Plan.objects.for_org(organization).filter(pk=int(approval.subject_id)).first()
    files: list[ProducedFile] = []
    arguments = approval.arguments if isinstance(approval.arguments, dict) else {}
    if approval.kind == "task" and isinstance(arguments.get("task"), int):
        files = step_files(organization, task_id=arguments["task"], revision=arguments.get("revision"))
    scopes = _viewer_scopes(approval, viewer)
    can_decide = _can_decide(approval, viewer, scopes)
    can_edit = bool(plan is not None and plan.status in (PlanStatus.PROPOSED, PlanStatus.AWAITING_APPROVAL)
                    and approval.status == ApprovalStatus.PENDING and Scope.TASKS_WRITE in scopes)
    return {
        "approval": approval,
        "thread": thread,
        "plan": plan,
        "reason_html": render_markdown(approval.reason),
        "files": files,
        "can_decide": can_decide,
        "can_edit": can_edit,
        "pending": approval.status == ApprovalStatus.PENDING,
        "open": approval.status == ApprovalStatus.PENDING and approval.kind != "plan",  # a plan is shown above it
    }


def render_approval(approval: ApprovalRequest, *, viewer: User | None, thread: Thread | None,
                    request: Any = None) -> str:
    with timezone.override(approval.organization.timezone or "UTC"):
        return render_to_string("chat/_approval.html", approval_context(approval, viewer=viewer, thread=thread),
                                request=request)


def approval_items(*, organization: Organization, ids: set[int] | list[int], viewer: User | None,
                   thread: Thread | None) -> list[dict[str, Any]]:
    """Fresh cards (``{"type": "approval", "id", "status", "html"}``) for the approvals ``ids``."""
    if not ids:
        return []
    rows = ApprovalRequest.objects.for_org(organization).filter(pk__in=list(ids)).select_related(
        "organization", "decided_by").order_by("id")
    return [{"type": "approval", "id": a.pk, "status": a.status,
             "html": render_approval(a, viewer=viewer, thread=thread)} for a in rows]


def approval_ids_of_request(*, organization: Organization, root_id: int, thread: Thread) -> set[int]:
    """The approvals named in the thread's messages about one request (plan, steps, tool calls)."""
    from automation.models import Task

    tasks = {root_id, *Task.objects.for_org(organization).filter(parent_id=root_id).values_list("id", flat=True)}
    found: set[int] = set()
    for metadata in Message.objects.for_org(organization).filter(thread=thread, task_id__in=tasks).values_list(
            "metadata", flat=True):
        approval = (metadata or {}).get("approval")
        if isinstance(approval, int):
            found.add(approval)
    return found


# --- steps: revisions and their files -------------------------------------------------------------------


def step_files(organization: Organization, *, task_id: int, revision: Any = None) -> list[ProducedFile]:
    """Files the step task's tool calls wrote (of one revision when given)."""
    from tools.models import ToolCall

    calls = ToolCall.objects.for_org(organization).filter(task_id=str(task_id), source="agent",
                                                            outcome="succeeded").order_by("id")
    files = []
    for call in calls:
        if revision is not None and (call.metadata or {}).get("revision") != revision:
            continue
        found = produced_file(organization.pk, call.result)
        if found is not None:
            files.append(found)
    return files


# --- side-by-side diff ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffRow:
    kind: str  # equal, replace, delete, insert
    left_number: int | None
    left: SafeString
    right_number: int | None
    right: SafeString


def _marked(words_a: list[str], words_b: list[str]) -> tuple[SafeString, SafeString]:
    """Two lines, escaped, with the changed words wrapped in <del>/<ins>."""
    left: list[str] = []
    right: list[str] = []
    for op, a1, a2, b1, b2 in _merged(difflib.SequenceMatcher(a=words_a, b=words_b, autojunk=False).get_opcodes(),
                                      words_a):
        a_text = html.escape("".join(words_a[a1:a2]))
        b_text = html.escape("".join(words_b[b1:b2]))
        if op == "equal":
            left.append(a_text)
            right.append(b_text)
        else:
            if a_text:
                left.append(f"<del>{a_text}</del>")
            if b_text:
                right.append(f"<ins>{b_text}</ins>")
    return mark_safe("".join(left)), mark_safe("".join(right))  # noqa: S308 - every piece is escaped above


_WORDS = re.compile(r"\s+|\w+|[^\w\s]")
Opcode = tuple[str, int, int, int, int]


def _merged(opcodes: list[Opcode], words_a: list[str]) -> list[Opcode]:
    """Opcodes with a run of changed words kept whole: blanks between two changes count as changed."""
    out: list[Opcode] = []
    for index, (op, a1, a2, b1, b2) in enumerate(opcodes):
        between = 0 < index < len(opcodes) - 1 and opcodes[index - 1][0] != "equal" \
            and opcodes[index + 1][0] != "equal"
        if op == "equal" and between and not "".join(words_a[a1:a2]).strip():
            op = "replace"
        if out and op != "equal" and out[-1][0] != "equal":
            out[-1] = ("replace", out[-1][1], a2, out[-1][3], b2)
        else:
            out.append((op, a1, a2, b1, b2))
    return out


def side_by_side(before: str, after: str) -> list[DiffRow]:
    """Rows of a side-by-side diff of two texts, line by line, changed words marked."""
    a, b = before.splitlines(), after.splitlines()
    rows: list[DiffRow] = []
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            for offset in range(a2 - a1):
                text = mark_safe(html.escape(a[a1 + offset]))  # noqa: S308 - escaped
                rows.append(DiffRow("equal", a1 + offset + 1, text, b1 + offset + 1, text))
            continue
        for offset in range(max(a2 - a1, b2 - b1)):
            left_line = a[a1 + offset] if a1 + offset < a2 else None
            right_line = b[b1 + offset] if b1 + offset < b2 else None
            if left_line is not None and right_line is not None:
                left, right = _marked(_WORDS.findall(left_line), _WORDS.findall(right_line))
                rows.append(DiffRow("replace", a1 + offset + 1, left, b1 + offset + 1, right))
            elif left_line is not None:
                rows.append(DiffRow("delete", a1 + offset + 1, mark_safe(f"<del>{html.escape(left_line)}</del>"),  # noqa: S308
                                    None, mark_safe("")))
            else:
                assert right_line is not None
                rows.append(DiffRow("insert", None, mark_safe(""), b1 + offset + 1,
                                    mark_safe(f"<ins>{html.escape(right_line)}</ins>")))  # noqa: S308
    return rows


# --- items of the stream ----------------------------------------------------------------------------------


def money(value: Any) -> str:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ""
    return f"{amount:.4f}".rstrip("0").rstrip(".") if amount else "0"


def message_context(message: Message, *, viewer: User | None, thread: Thread) -> dict[str, Any]:
    """What one message of the timeline shows."""
    organization = thread.organization
    metadata = message.metadata if isinstance(message.metadata, dict) else {}
    who = speaker(message.role)
    files: list[ProducedFile] = []
    if isinstance(metadata.get("tool_call"), int):
        files = files_of_calls(organization, [metadata["tool_call"]])
    approval_html = ""
    event = str(metadata.get("event") or "")
    approval_id = metadata.get("approval")
    if isinstance(approval_id, int) and event in ("agent.plan_approval_requested", "agent.approval_requested"):
        approval = ApprovalRequest.objects.for_org(organization).filter(pk=approval_id).select_related(
            "organization", "decided_by").first()
        if approval is not None:
            approval_html = render_approval(approval, viewer=viewer, thread=thread)
    llm = metadata.get("llm") if isinstance(metadata.get("llm"), dict) else {}
    question = event == "agent.clarification_requested" or metadata.get("kind") == "question"
    answer_open = False
    if question:  # still open? (the thread row may be older than the question: read it again)
        pending = Thread.objects.for_org(organization).filter(pk=thread.pk).values_list("pending", flat=True).first()
        answer_open = isinstance(pending, dict) and pending.get("kind") == "task_question" \
            and pending.get("task") == message.task_id
    return {
        "message": message,
        "thread": thread,
        "slug": organization.slug,
        "speaker": who,
        "icon": icon_svg(who.role),
        "body": render_markdown(message.content),
        "files": files,
        "approval_html": mark_safe(approval_html),  # noqa: S308 - rendered by our template (autoescaped)
        "question": question,
        "answer_open": answer_open,
        "revision": event in ("agent.revision", "agent.verdict") and message.task_id is not None,
        "event": event,
        "step": str(metadata.get("step") or ""),
        "cost": money(llm.get("cost")) if llm and money(llm.get("cost")) not in ("", "0") else "",
        "currency": str(llm.get("currency") or "") if llm else "",
        "scripted": bool(metadata.get("scripted")),
        "scripted_label": str(metadata.get("label") or ""),
        "failed": metadata.get("code") in ("error", "forbidden") or event.endswith(("_failed", "model_error")),
    }


def render_message(message: Message, *, viewer: User | None, thread: Thread, request: Any = None) -> str:
    """One message as the timeline shows it (times in the organization's time zone)."""
    with timezone.override(thread.organization.timezone or "UTC"):
        return render_to_string("chat/_message.html", message_context(message, viewer=viewer, thread=thread),
                                request=request)


def message_item(message: Message, *, viewer: User | None, thread: Thread) -> dict[str, Any]:
    """A message as the socket sends it (rendered like the page renders it)."""
    return {"type": "message", "id": message.pk, "role": message.role, "task": message.task_id,
            "created_at": message.created_at.isoformat() if message.created_at else None,
            "html": render_message(message, viewer=viewer, thread=thread)}


def event_item(data: dict[str, Any]) -> dict[str, Any]:
    """A task event as the socket sends it (the page's script folds it into the run's panel)."""
    return {"type": "event", "task": data["task"], "root": data["root"], "root_title": data.get("root_title", ""),
            "step": data.get("step", ""),
            "sequence": data["sequence"], "event": data["type"], "actor": data.get("actor", ""),
            "payload": data.get("payload") or {}, "created_at": data.get("created_at")}
