"""Errors of the memory services (mapped to HTTP answers by the API's error handler)."""

from __future__ import annotations

from accounts.errors import Forbidden, InvalidInput
from memory.privacy import Finding, describe


class SecretRefused(InvalidInput):
    """The input holds a secret: nothing was stored. Carries the kinds found, never the secret."""

    code = "secret_refused"

    def __init__(self, findings: list[Finding], *, field: str | None = None) -> None:
        self.findings = findings
        super().__init__(describe(findings), field=field or (findings[0].field if findings else None) or None)


class MemoryDisabled(Forbidden):
    code = "memory_disabled"

    def __init__(self) -> None:
        super().__init__("Memory is turned off for this organization.")
