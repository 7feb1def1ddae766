"""http_request: a request to a public URL, for a model or a member.

SECURITY: every URL here is untrusted and goes through
``PublicAddressPolicy`` (see ``tools.net.guard``); the organization's allow
list narrows it, never widens it past public addresses.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from tools.context import ToolContext
from tools.net.client import DEFAULT_MAX_BYTES, fetch
from tools.net.guard import ALLOWED_PORTS, PublicAddressPolicy, parse_url
from tools.registry import Tool
from tools.types import SideEffect

MAX_TIMEOUT = 30.0
HARD_MAX_BYTES = 10 * 1024 * 1024
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "+json", "+xml")
SHOWN_HEADERS = ("content-type", "content-length", "last-modified", "etag", "location", "date", "retry-after")

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "minLength": 8, "maxLength": 2048, "description": "An http(s) URL."},
        "method": {"type": "string", "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"], "default": "GET"},
        "headers": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 4096},
                    "maxProperties": 30},
        "body": {"type": "string", "maxLength": 1_000_000, "description": "A text body."},
        "json": {"description": "A JSON body (instead of body)."},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIMEOUT},
    },
    "required": ["url"],
    "additionalProperties": False,
}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "allowed_hosts": {"type": "array", "items": {"type": "string", "pattern": r"^(\*\.)?[a-z0-9.-]+$"}},
        "allowed_ports": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535}},
        "max_response_bytes": {"type": "integer", "minimum": 1, "maximum": HARD_MAX_BYTES},
    },
    "additionalProperties": False,
}


def policy_for(config: dict[str, Any]) -> PublicAddressPolicy:
    return PublicAddressPolicy(
        allowed_hosts=tuple(h.lower() for h in config.get("allowed_hosts", ())),
        allowed_ports=frozenset(config.get("allowed_ports") or ALLOWED_PORTS),
    )


def check_url(ctx: ToolContext, args: dict[str, Any]) -> None:
    """Refuse an unacceptable URL before anything is claimed (the handler checks again, with DNS)."""
    policy_for(ctx.config).check_url(parse_url(args["url"]))


def http_request(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    config = ctx.config
    headers = dict(args.get("headers") or {})
    body: bytes | None = None
    if "json" in args:
        body = json.dumps(args["json"]).encode()
        headers.setdefault("Content-Type", "application/json")
    elif "body" in args:
        body = args["body"].encode()
    timeout = min(float(args.get("timeout", 10.0)), ctx.check_deadline())
    response = fetch(
        args.get("method", "GET"),
        args["url"],
        policy=policy_for(config),
        headers=headers,
        body=body,
        timeout=timeout,
        max_bytes=int(config.get("max_response_bytes", DEFAULT_MAX_BYTES)),
    )
    content_type = response.headers.get("content-type", "")
    result: dict[str, Any] = {
        "status": response.status,
        "url": response.url,
        "redirects": response.redirects,
        "headers": {k: v for k, v in response.headers.items() if k in SHOWN_HEADERS},
        "size": len(response.body),
    }
    if any(t in content_type for t in TEXT_TYPES) or not content_type:
        result["text"] = response.text()
    else:
        result["base64"] = base64.b64encode(response.body).decode()
    return result


HTTP_REQUEST = Tool(
    name="http_request",
    title="HTTP request",
    description=(
        "Send an HTTP request to a public web address and return the status, main headers and body. "
        "Private, internal and cloud-metadata addresses are refused."
    ),
    parameters=PARAMETERS,
    handler=http_request,
    authorize=check_url,
    side_effect=SideEffect.EXTERNAL,
    timeout=MAX_TIMEOUT + 5,
    config_schema=CONFIG_SCHEMA,
)
