"""The demo organization's onboarding set-up (a ``DEMO_SEED_HOOKS`` entry, run by ``manage.py seed_demo``).

What it configures, offline:

* the shipped ``employee-onboarding`` workflow, brought up to the shipped
  version if the demo organization has an older shipped one;
* the demo Manager (``manager@demo.staffer.local``) is named Dana Whitfield,
  the manager the judged request names ("… reporting to Dana"), so she is
  copied on the welcome email, invited to the meetings, and can log in with
  the demo password to see the run. A name someone changed is left alone.

What it deliberately does not configure: a BambooHR credential. The HRIS
step therefore ends in a recorded refusal (``not_configured``: "needs a
bamboohr credential; an admin adds one first"), the welcome email and the
invitations are skipped, and the run fails naming the HRIS step. An admin
who adds a BambooHR credential (with ``STAFFER_BAMBOOHR_BASE_URL`` pointing
at an on-premises or sandbox HRIS) retries that step and the run goes on.
There is no built-in HRIS stand-in, on purpose: the demo shows the real
integration's real answer. Mail goes to the environment's email backend
(the console in development).
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import Membership, Organization
from accounts.roles import Role
from accounts.services.audit import audit_record
from automation.onboarding import onboarding_workflow

DEMO_MANAGER_EMAIL = "manager@demo.staffer.local"
DEMO_MANAGER_NAME = "Dana Whitfield"
SEEDED_NAMES = frozenset({"", "Demo Manager"})


def seed_demo(organization: Organization) -> None:
    """Give the demo organization what the onboarding scenario needs (idempotent)."""
    onboarding_workflow(organization=organization)
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
