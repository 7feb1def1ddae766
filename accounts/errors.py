"""Errors raised by services; the API and pages turn them into answers."""

from __future__ import annotations


class ServiceError(Exception):
    """A refused operation, with a message meant for the person who asked."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class InvalidInput(ServiceError):
    status_code = 400
    code = "invalid"


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Forbidden(ServiceError):
    status_code = 403
    code = "permission_denied"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"
