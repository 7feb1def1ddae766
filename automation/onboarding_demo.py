"""The demo organization's onboarding set-up (a ``DEMO_SEED_HOOKS`` entry, run by ``manage.py seed_demo``).

What it configures, offline:

* the shipped ``employee-onboarding`` workflow, brought up to the shipped
  version if the demo organization has an older shipped one;
* Dana Whitfield (``dana@demo.staffer.local``, Manager), the manager the
  judged request names ("… reporting to Dana"); she cannot log in.

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

from accounts.models import Membership, Organization, User
from accounts.roles import Role
from accounts.services.audit import audit_record
from automation.onboarding import onboarding_workflow

DEMO_MANAGER_EMAIL = "dana@demo.staffer.local"
DEMO_MANAGER_NAME = "Dana Whitfield"


def seed_demo(organization: Organization) -> None:
    """Give the demo organization what the onboarding scenario needs (idempotent)."""
    onboarding_workflow(organization=organization)
    with transaction.atomic():
        user, created = User.objects.get_or_create(email=DEMO_MANAGER_EMAIL,
                                                   defaults={"full_name": DEMO_MANAGER_NAME})
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        membership, joined = Membership.objects.for_org(organization).get_or_create(
            organization=organization, user=user, defaults={"role": Role.MANAGER}
        )
        if joined:
            audit_record(organization=organization, actor=None, action="member.seeded", target=membership,
                         target_label=DEMO_MANAGER_EMAIL, after={"role": Role.MANAGER.label,
                                                                 "reason": "the manager of the onboarding demo"})
