"""What every integration shares: configured base URLs, credentials, one HTTP call, provider errors.

SECURITY: a provider's base URL is operator configuration (a setting or an
environment variable), never a model's or a member's input, so requests to it
use ``TRUSTED_CONFIG`` and may reach a private address (an on-premises HRIS, a
local stub in tests). Paths are built from validated arguments with every
segment percent-quoted. Credentials come from ``ToolContext.credential`` and
are scrubbed from results and errors.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings

from tools.context import ToolContext
from tools.errors import ToolFailed, ToolRefused
from tools.net.client import Response, fetch
from tools.net.guard import TRUSTED_CONFIG

DEFAULT_BASE_URLS = {
    "slack": "https://hooks.slack.com",
    "github": "https://api.github.com",
    "bamboohr": "https://api.bamboohr.com",
    "stripe": "https://api.stripe.com",
}
MAX_RESPONSE = 2 * 1024 * 1024


class ProviderRejected(ToolRefused):
    """The provider answered 4xx: it refused, so nothing happened there."""

    code = "provider_rejected"


def base_url(provider: str) -> str:
    """``TOOLS_INTEGRATION_URLS[provider]``, else ``STAFFER_<PROVIDER>_BASE_URL``, else the provider's own."""
    configured = getattr(settings, "TOOLS_INTEGRATION_URLS", {}) or {}
    url = configured.get(provider) or os.environ.get(f"STAFFER_{provider.upper()}_BASE_URL") or \
        DEFAULT_BASE_URLS[provider]
    return url.rstrip("/")


def segment(value: str | int) -> str:
    """A path segment, quoted so it cannot add segments or a query."""
    return quote(str(value), safe="")


def call(
    ctx: ToolContext,
    provider: str,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
    form: list[tuple[str, str]] | None = None,
    timeout: float = 20.0,
) -> Response:
    """One request to a provider's configured API within the invocation's deadline."""
    send_headers = dict(headers or {})
    body: bytes | None = None
    if json_body is not None:
        body = json.dumps(json_body).encode()
        send_headers.setdefault("Content-Type", "application/json")
    elif form is not None:
        body = urlencode(form).encode()
        send_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    response = fetch(method, url, policy=TRUSTED_CONFIG, headers=send_headers, body=body,
                     timeout=min(timeout, ctx.check_deadline()), max_bytes=MAX_RESPONSE, max_redirects=0)
    if 400 <= response.status < 500:
        raise ProviderRejected(f"{provider} refused ({response.status}): {describe_error(response)}"[:1000])
    if response.status >= 500:
        raise ToolFailed(f"{provider} failed ({response.status}): {describe_error(response)}"[:1000],
                         code="provider_error")
    return response


def describe_error(response: Response) -> str:
    text = response.text()[:500]
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip() or response.reason
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):  # Stripe
            return str(error.get("message") or error.get("code") or error)
        if "message" in data:  # GitHub
            details = data.get("errors")
            return f"{data['message']}" + (f" {details}" if details else "")
        if isinstance(error, str):
            return error
    return text
