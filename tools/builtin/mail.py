"""email_send and email_draft: mail through Django's email backend (SMTP in production), with attachments.

Sending to an address outside the organization's domains asks for approval
by default (``ApprovalPolicy(outside_domains=True)``). The Message-ID is
derived from the tool call, so a message is recognisable if a provider
reports it twice.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from email.utils import formataddr, make_msgid
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from tools.context import ToolContext
from tools.errors import ToolFailed
from tools.policy import internal_domains, outside_recipients
from tools.registry import ApprovalPolicy, Tool
from tools.storage import split_path
from tools.types import SideEffect

MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
ADDRESS = {"type": "string", "format": "email", "maxLength": 254,
           "pattern": r"^[^\s<>,;\"]+@[^\s<>,;\"]+\.[^\s<>,;\"]+$"}
ADDRESSES = {"type": "array", "items": ADDRESS, "maxItems": 50}

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "to": {**ADDRESSES, "minItems": 1},
        "cc": ADDRESSES,
        "bcc": ADDRESSES,
        "subject": {"type": "string", "minLength": 1, "maxLength": 300, "pattern": r"^[^\r\n]*$"},
        "body": {"type": "string", "maxLength": 200_000},
        "html": {"type": "string", "maxLength": 500_000},
        "reply_to": ADDRESS,
        "attachments": {
            "type": "array",
            "maxItems": MAX_ATTACHMENTS,
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "maxLength": 1024, "description": "A file in the organization's files."},
                    "filename": {"type": "string", "maxLength": 200, "pattern": r"^[^/\\\r\n]+$"},
                    "content_base64": {"type": "string", "maxLength": MAX_ATTACHMENT_BYTES * 2},
                    "content_type": {"type": "string", "maxLength": 100, "pattern": r"^[\w.+-]+/[\w.+-]+$"},
                },
                "oneOf": [{"required": ["path"]}, {"required": ["filename", "content_base64"]}],
                "additionalProperties": False,
            },
        },
    },
    "required": ["to", "subject", "body"],
    "additionalProperties": False,
}


def recipients(args: dict[str, Any]) -> list[str]:
    return [*args.get("to", []), *args.get("cc", []), *args.get("bcc", [])]


def sender(ctx: ToolContext) -> str:
    address = getattr(settings, "TOOLS_EMAIL_FROM", "") or settings.DEFAULT_FROM_EMAIL
    return formataddr((ctx.organization.name, address))


def load_attachments(ctx: ToolContext, items: list[dict[str, Any]]) -> list[tuple[str, bytes, str]]:
    loaded: list[tuple[str, bytes, str]] = []
    total = 0
    for item in items:
        if "path" in item:
            content = ctx.storage().read(item["path"], limit=MAX_ATTACHMENT_BYTES)
            filename = item.get("filename") or split_path(item["path"])[-1]
        else:
            try:
                content = base64.b64decode(item["content_base64"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ToolFailed(f"attachment {item['filename']!r} is not valid base64", code="invalid_arguments") \
                    from exc
            filename = item["filename"]
        total += len(content)
        if total > MAX_ATTACHMENT_BYTES:
            raise ToolFailed(f"attachments are limited to {MAX_ATTACHMENT_BYTES} bytes in all", code="too_large")
        content_type = item.get("content_type") or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        loaded.append((filename, content, content_type))
    return loaded


def build_message(ctx: ToolContext, args: dict[str, Any]) -> EmailMultiAlternatives:
    domain = (getattr(settings, "TOOLS_EMAIL_FROM", "") or settings.DEFAULT_FROM_EMAIL).rsplit("@", 1)[-1]
    message_id = make_msgid(idstring=f"tool-{ctx.organization.pk}-{ctx.tool_call_id or 'draft'}", domain=domain)
    headers = {"Message-ID": message_id}
    if ctx.idempotency_key:
        headers["X-Staffer-Idempotency-Key"] = ctx.idempotency_key[:200]
    reply_to = [args["reply_to"]] if args.get("reply_to") else ([ctx.actor.email] if ctx.actor else [])
    message = EmailMultiAlternatives(
        subject=args["subject"],
        body=args["body"],
        from_email=sender(ctx),
        to=args["to"],
        cc=args.get("cc") or [],
        bcc=args.get("bcc") or [],
        reply_to=reply_to,
        headers=headers,
    )
    if args.get("html"):
        message.attach_alternative(args["html"], "text/html")
    for filename, content, content_type in load_attachments(ctx, args.get("attachments") or []):
        message.attach(filename, content, content_type)
    return message


def send(ctx: ToolContext, message: EmailMultiAlternatives) -> None:
    connection = get_connection(timeout=max(1.0, ctx.check_deadline()))
    try:
        sent = connection.send_messages([message])
    except OSError as exc:
        raise ToolFailed(f"the mail server did not take the message: {type(exc).__name__}: {exc}",
                         code="smtp_error") from exc
    if not sent:
        raise ToolFailed("the mail server did not take the message", code="smtp_error")


def email_send(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    message = build_message(ctx, args)
    send(ctx, message)
    return {
        "message_id": message.extra_headers["Message-ID"],
        "to": args["to"],
        "cc": args.get("cc", []),
        "bcc_count": len(args.get("bcc", [])),
        "subject": args["subject"],
        "attachments": [a[0] for a in message.attachments if isinstance(a, tuple)],
    }


def email_draft(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    message = build_message(ctx, args)
    outside = outside_recipients(recipients(args), internal_domains(ctx.organization))
    return {
        "from": message.from_email,
        "to": message.to,
        "cc": message.cc,
        "bcc": message.bcc,
        "subject": message.subject,
        "body": message.body,
        "attachments": [a[0] for a in message.attachments if isinstance(a, tuple)],
        "outside_recipients": outside,
        "sending_needs_approval": bool(outside),
        "size": len(message.message().as_bytes()),
    }


EMAIL_SEND = Tool(
    name="email_send",
    title="Send an email",
    description=(
        "Send an email (plain text, optional HTML, optional attachments from the organization's files). "
        "Mail to addresses outside the organization waits for approval."
    ),
    parameters=PARAMETERS,
    handler=email_send,
    side_effect=SideEffect.EXTERNAL,
    approval=ApprovalPolicy(outside_domains=True),
    recipients=recipients,
    timeout=60,
)
EMAIL_DRAFT = Tool(
    name="email_draft",
    title="Draft an email",
    description="Prepare an email without sending it: shows the message and whether sending would need approval.",
    parameters=PARAMETERS,
    handler=email_draft,
    side_effect=SideEffect.READ,
    timeout=30,
)
