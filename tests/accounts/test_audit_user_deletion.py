import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from accounts.models import AuditEvent
from accounts.services.organizations import organization_update


def test_deleting_a_user_keeps_their_audit_events(tenants):
    """A deleted user's audit events stay, with the actor's label and every other column unchanged."""
    a, _ = tenants
    organization_update(organization=a.organization, actor=a.admin, name="Renamed")
    event = AuditEvent.objects.for_org(a.organization).get(action="organization.updated")
    admin_email = a.admin.email
    a.admin.delete()
    event.refresh_from_db()
    assert event.actor_id is None
    assert event.actor_label == admin_email
    assert event.after == {"name": "Renamed", "timezone": "UTC"}


def test_nulling_the_actor_cannot_smuggle_other_changes(tenants):
    """An UPDATE that clears the actor and changes anything else is refused by the database."""
    a, _ = tenants
    organization_update(organization=a.organization, actor=a.admin, name="Renamed")
    event = AuditEvent.objects.for_org(a.organization).get(action="organization.updated")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_auditevent SET actor_id = NULL, action = 'nothing.happened' WHERE id = %s", [event.pk]
        )
    event.refresh_from_db()
    assert event.action == "organization.updated"
    assert event.actor_id == a.admin.pk
