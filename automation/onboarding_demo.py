"""The demo organization's onboarding set-up (a ``DEMO_SEED_HOOKS`` entry, run by ``manage.py seed_demo``).

What it configures, offline:

* the shipped ``employee-onboarding`` workflow, brought up to the shipped
  version if the demo organization has an older shipped one;
* the demo Manager (``manager@demo.staffer.local``) is named Dana Whitfield,
  the manager the judged request names ("… reporting to Dana"), so she is
  copied on the welcome email, invited to the meetings, and can log in with
  the demo password to see the run. A name someone changed is left alone.

* where the local HRIS stand-in is on (``STAFFER_DEMO_HRIS``, the default in
  development: ``runstack`` serves it, ``tools/standins/bamboohr.py``), a
  BambooHR credential for it, so the HRIS step creates Maria Lopez there
  through the real BambooHR client and the whole run completes offline. The
  credential is created once, by the demo owner, encrypted and audited like
  any other; an admin who rotates it to a real BambooHR key (and sets
  ``STAFFER_BAMBOOHR_BASE_URL``) or deletes it keeps it that way.

With the stand-in off and no credential the HRIS step ends in a recorded
refusal (``not_configured``: "needs a bamboohr credential; an admin adds one
first"), the welcome email and the invitations are skipped, and the run fails
naming the HRIS step; adding a credential and retrying that step goes on.
Mail goes to the environment's email backend (the console in development).
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from accounts.models import AuditEvent, Membership, Organization
from accounts.roles import Role
from accounts.services.audit import audit_record
from automation.onboarding import onboarding_workflow
from tools.models import IntegrationCredential
from tools.services.credentials import credential_create

DEMO_OWNER_EMAIL = "owner@demo.staffer.local"
DEMO_MANAGER_EMAIL = "manager@demo.staffer.local"
DEMO_MANAGER_NAME = "Dana Whitfield"
SEEDED_NAMES = frozenset({"", "Demo Manager"})
HRIS_CONNECTED = "demo.hris_connected"


def seed_demo(organization: Organization) -> None:
    """Give the demo organization what the onboarding scenario needs (idempotent)."""
    onboarding_workflow(organization=organization)
    connect_demo_hris(organization)
    with transaction.atomic():
        membership = (
            Membership.objects.for_org(organization).select_related("user")
            .filter(user__email=DEMO_MANAGER_EMAIL, role=Role.MANAGER).first()
        )
        if membership is None or membership.user.full_name not in SEEDED_NAMES:
            return
        user = membership.user
        before = user.full_name
        user.full_name = DEMO_MANAGER_NAME
        user.save(update_fields=["full_name"])
        audit_record(organization=organization, actor=None, action="demo.member_named", target=membership,
                     target_label=DEMO_MANAGER_EMAIL, before={"full_name": before},
                     after={"full_name": DEMO_MANAGER_NAME, "reason": "the manager of the onboarding demo"})


def connect_demo_hris(organization: Organization) -> IntegrationCredential | None:
    """Give the demo a BambooHR credential for the local stand-in, once.

    Only when the stand-in is on and the demo was never connected before: a
    credential an admin deleted or replaced is not put back by the next
    ``./staffer run`` (the connection is remembered as an audit event).
    """
    if not settings.DEMO_HRIS:
        return None
    if AuditEvent.objects.for_org(organization).filter(action=HRIS_CONNECTED).exists():
        return None
    if IntegrationCredential.objects.for_org(organization).filter(provider="bamboohr").exists():
        return None
    owner = (
        Membership.objects.for_org(organization).select_related("user")
        .filter(user__email=DEMO_OWNER_EMAIL, role=Role.OWNER).first()
    )
    if owner is None:
        return None
    with transaction.atomic():
        credential = credential_create(organization=organization, actor=owner.user, provider="bamboohr", secret={
            "api_key": settings.DEMO_HRIS_API_KEY, "company_domain": settings.DEMO_HRIS_COMPANY,
        })
        audit_record(organization=organization, actor=None, action=HRIS_CONNECTED, target=credential,
                     after={"reason": "the demo's local HRIS stand-in", "company": settings.DEMO_HRIS_COMPANY})
    return credential
