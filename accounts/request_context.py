"""Per-request metadata (IP, request id) for the audit log."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestMeta:
    ip: str | None = None
    request_id: str = ""


_EMPTY = RequestMeta()
_meta: contextvars.ContextVar[RequestMeta] = contextvars.ContextVar("staffer_request_meta", default=_EMPTY)


def current() -> RequestMeta:
    return _meta.get()


def set_current(meta: RequestMeta) -> contextvars.Token[RequestMeta]:
    return _meta.set(meta)


def reset(token: contextvars.Token[RequestMeta]) -> None:
    _meta.reset(token)
