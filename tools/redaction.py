"""Redaction of secrets from what is recorded (ToolCall arguments and results, audit events).

SECURITY: any mapping key that looks like a secret (password, token, api key,
authorization, cookie, …) or that a tool declares secret is replaced by
``[redacted]`` at every depth, and every secret string a handler read through
``ToolContext.credential`` is scrubbed from strings.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

REDACTED = "[redacted]"
SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[_-]?key|apikey|authorization|auth[_-]?header|cookie|"
    r"credential|private[_-]?key|signature|webhook[_-]?url|client[_-]?secret|session[_-]?id)",
    re.IGNORECASE,
)


def redact(value: Any, *, secret_names: Collection[str] = (), secrets: Collection[str] = ()) -> Any:
    """A copy of ``value`` with secret-looking keys and known secret strings replaced."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, str) and (key in secret_names or SECRET_KEY.search(key)):
                out[key] = REDACTED
            else:
                out[key] = redact(item, secret_names=secret_names, secrets=secrets)
        return out
    if isinstance(value, list | tuple):
        return [redact(item, secret_names=secret_names, secrets=secrets) for item in value]
    if isinstance(value, str) and secrets:
        for secret in sorted(secrets, key=len, reverse=True):
            if secret:
                value = value.replace(secret, REDACTED)
        return value
    return value
