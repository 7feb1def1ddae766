"""Errors a tool handler raises; the invocation pipeline records them as outcomes."""

from __future__ import annotations


class ToolError(Exception):
    """Base of handler errors: a message meant for the person (or model) who asked."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class ToolRefused(ToolError):
    """The handler refused before doing anything (an SSRF attempt, a path escape, …).

    Nothing happened, so the idempotency key is released and the call is
    recorded as refused.
    """

    code = "refused"


class ToolFailed(ToolError):
    """The handler failed; something may or may not have happened outside.

    The idempotency key stays claimed: a retry with the same key returns this
    failure instead of trying again blindly.
    """

    code = "failed"


class ToolTimeout(ToolFailed):
    code = "timeout"
