"""What a tool handler receives besides its arguments."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tools.errors import ToolTimeout
from tools.storage import OrgStorage
from tools.types import InvocationContext

if TYPE_CHECKING:
    from accounts.models import ApprovalRequest, Membership, Organization, User
    from tools.models import ToolSetting
    from tools.registry import Tool


# Credential fields that identify rather than authenticate (scrubbing them would garble results).
NOT_SECRET_FIELDS = frozenset({"company_domain"})


@dataclass
class ToolContext:
    """The organization, actor and limits of one invocation.

    Handlers bound every wait by :meth:`remaining` (the invocation's deadline),
    read secrets only through :meth:`credential` (which remembers them so they
    can be scrubbed from results and errors), and touch files only through
    :meth:`storage`.
    """

    organization: Organization
    actor: User | None
    membership: Membership | None
    tool: Tool
    setting: ToolSetting | None = None
    invocation: InvocationContext = field(default_factory=InvocationContext)
    idempotency_key: str = ""
    tool_call_id: int | None = None
    approval: ApprovalRequest | None = None
    deadline: float = 0.0
    cost: Decimal | None = None
    secrets: set[str] = field(default_factory=set, repr=False)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.setting.config) if self.setting is not None and self.setting.config else {}

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative)."""
        if not self.deadline:
            return float(self.tool.timeout)
        return max(0.0, self.deadline - time.monotonic())

    def check_deadline(self) -> float:
        left = self.remaining()
        if left <= 0:
            raise ToolTimeout(f"{self.tool.name} ran past its {self.tool.timeout:g} s limit")
        return left

    def credential(self, provider: str, name: str = "default") -> dict[str, str]:
        """The decrypted secret of an integration (remembered for scrubbing)."""
        from tools.services.credentials import credential_secret

        secret = credential_secret(organization=self.organization, provider=provider, name=name)
        for field_name, value in secret.items():
            if field_name not in NOT_SECRET_FIELDS and isinstance(value, str) and len(value) >= 8:
                self.secrets.add(value)
        return secret

    def storage(self) -> OrgStorage:
        return OrgStorage(self.organization.pk)

    def scrub(self, text: str) -> str:
        """``text`` with every secret read in this invocation replaced."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return text
