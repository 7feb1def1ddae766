"""slack_post_message: a message through a Slack incoming webhook.

Contract (api.slack.com/messaging/webhooks): POST JSON ``{"text": …}`` (and
optional ``blocks``) to the webhook URL; Slack answers ``200 ok``, or 4xx with
a plain-text error such as ``invalid_payload``, ``channel_not_found`` or
``no_text``. The webhook URL is a secret (credential ``slack``) and must sit
under the configured Slack base URL.
"""

from __future__ import annotations

from typing import Any

from tools.context import ToolContext
from tools.errors import ToolFailed
from tools.integrations.base import base_url, call
from tools.registry import Tool
from tools.types import SideEffect


def slack_post_message(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    webhook = ctx.credential("slack", args.get("webhook", "default"))["webhook_url"]
    if not webhook.startswith(base_url("slack") + "/"):
        raise ToolFailed("the Slack webhook URL is not under the configured Slack address", code="credential_invalid")
    payload: dict[str, Any] = {"text": args["text"]}
    if args.get("blocks"):
        payload["blocks"] = args["blocks"]
    response = call(ctx, "slack", "POST", webhook, json_body=payload)
    return {"delivered": response.text().strip() == "ok", "status": response.status}


SLACK_POST_MESSAGE = Tool(
    name="slack_post_message",
    title="Post to Slack",
    description="Post a message to the organization's Slack channel (through its incoming webhook).",
    parameters={
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": 40000},
            "blocks": {"type": "array", "maxItems": 50, "items": {"type": "object"}},
            "webhook": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,59}$",
                        "description": "Which configured webhook (channel) to use; 'default' if omitted."},
        },
        "required": ["text"],
        "additionalProperties": False,
    },
    handler=slack_post_message,
    side_effect=SideEffect.EXTERNAL,
    provider="slack",
    timeout=30,
)
