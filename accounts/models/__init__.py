from accounts.models.api_keys import ApiKey
from accounts.models.approvals import ApprovalRequest, ApprovalStatus
from accounts.models.audit import AuditEvent
from accounts.models.organizations import Invitation, Membership, Organization
from accounts.models.users import User

__all__ = [
    "ApiKey",
    "ApprovalRequest",
    "ApprovalStatus",
    "AuditEvent",
    "Invitation",
    "Membership",
    "Organization",
    "User",
]
