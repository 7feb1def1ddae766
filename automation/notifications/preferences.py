"""Per-user notification preferences: each kind in the bell or not, and by email at once, daily, or never."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from accounts.errors import InvalidInput
from accounts.models import Organization, User
from automation.notifications.models import EmailMode, NotificationKind, NotificationPreference

K = NotificationKind


@dataclass(frozen=True)
class Channels:
    in_app: bool
    email: str

    @property
    def delivers(self) -> bool:
        return self.in_app or self.email != EmailMode.OFF


DEFAULTS: dict[str, Channels] = {
    K.TASK_ASSIGNED: Channels(True, EmailMode.IMMEDIATE),
    K.DUE_SOON: Channels(True, EmailMode.DAILY),
    K.APPROVAL_REQUESTED: Channels(True, EmailMode.IMMEDIATE),
    K.RUN_FAILED: Channels(True, EmailMode.IMMEDIATE),
    K.DEPENDENCY_FINISHED: Channels(True, EmailMode.DAILY),
    K.MENTION: Channels(True, EmailMode.IMMEDIATE),
    K.WEEKLY_SUMMARY: Channels(True, EmailMode.IMMEDIATE),
    K.MAIL_QUARANTINED: Channels(True, EmailMode.DAILY),
    K.REMINDER: Channels(True, EmailMode.OFF),
}


def preferences_for(*, organization: Organization, user_id: int) -> dict[str, Channels]:
    """Every kind's channels for one user: their choices over the defaults."""
    chosen = {
        row.kind: Channels(row.in_app, row.email)
        for row in NotificationPreference.objects.for_org(organization).filter(user_id=user_id)
    }
    return {kind: chosen.get(kind, default) for kind, default in DEFAULTS.items()}


def channels_for(*, organization: Organization, user_id: int, kind: str) -> Channels:
    row = NotificationPreference.objects.for_org(organization).filter(user_id=user_id, kind=kind).first()
    if row is not None:
        return Channels(row.in_app, row.email)
    return DEFAULTS.get(kind, Channels(True, EmailMode.OFF))


def _check(changes: dict[str, Any], index: int) -> tuple[str, bool | None, str | None]:
    field = f"preferences[{index}]"
    kind = changes.get("kind")
    if kind not in DEFAULTS:
        raise InvalidInput(f"{kind!r} is not a notification kind; use one of {', '.join(DEFAULTS)}",
                           field=f"{field}.kind")
    in_app = changes.get("in_app")
    if in_app is not None and not isinstance(in_app, bool):
        raise InvalidInput("in_app is true or false", field=f"{field}.in_app")
    email = changes.get("email")
    if email is not None and email not in EmailMode.values:
        raise InvalidInput(f"email is one of {', '.join(EmailMode.values)}", field=f"{field}.email")
    return kind, in_app, email


def preferences_update(
    *, organization: Organization, user: User, changes: list[dict[str, Any]]
) -> dict[str, Channels]:
    """Set some kinds' channels (``{"kind", "in_app"?, "email"?}`` each) for ``user``; returns all of them.

    Validates everything before writing anything.
    """
    checked = [_check(item, i) for i, item in enumerate(changes)]
    with transaction.atomic():
        for kind, in_app, email in checked:
            current = channels_for(organization=organization, user_id=user.pk, kind=kind)
            NotificationPreference.objects.for_org(organization).update_or_create(
                organization=organization, user=user, kind=kind,
                defaults={"in_app": current.in_app if in_app is None else in_app,
                          "email": current.email if email is None else email},
            )
    return preferences_for(organization=organization, user_id=user.pk)
