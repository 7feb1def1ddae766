"""Create (or refresh) the demo organization with one user per role."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Membership, Organization, User
from accounts.roles import Role
from accounts.services.audit import audit_record

DEMO_SLUG = "demo"
DEMO_PASSWORD_ENV = "STAFFER_DEMO_PASSWORD"  # noqa: S105 - a variable name
DEFAULT_PASSWORD = "staffer-demo"  # noqa: S105 - the demo's published password


class Command(BaseCommand):
    help = "Seed the demo organization 'Acme Demo' with a user of every role and print their logins."

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get(DEMO_PASSWORD_ENV, DEFAULT_PASSWORD)
        with transaction.atomic():
            organization, created = Organization.objects.get_or_create(
                slug=DEMO_SLUG, defaults={"name": "Acme Demo", "timezone": "Europe/Berlin"}
            )
            logins = []
            for role in reversed(Role):
                email = f"{role.slug}@demo.staffer.local"
                user, user_created = User.objects.get_or_create(
                    email=email, defaults={"full_name": f"Demo {role.label}"}
                )
                if user_created:
                    user.set_password(password)
                    user.is_staff = role == Role.OWNER
                    user.is_superuser = role == Role.OWNER
                    user.save()
                Membership.objects.for_org(organization).update_or_create(
                    organization=organization, user=user, defaults={"role": role}
                )
                logins.append((role.label, email))
            if created:
                audit_record(organization=organization, actor=None, action="organization.seeded", target=organization)
            from django.conf import settings

            for hook in getattr(settings, "DEMO_SEED_HOOKS", []):
                from django.utils.module_loading import import_string

                import_string(hook)(organization)
        self.stdout.write(self.style.SUCCESS(f"Demo organization: {organization.name} (/{organization.slug})"))
        for label, email in logins:
            self.stdout.write(f"  {label:<8} {email}  password: {password}")
