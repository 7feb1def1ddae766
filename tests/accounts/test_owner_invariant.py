"""An organization always keeps at least one owner."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from accounts.errors import ServiceError
from accounts.models import Membership
from accounts.roles import Role
from accounts.services import members
from tests.accounts.factories import make_member


def _membership(tenant, user):
    return Membership.objects.for_org(tenant.organization).get(user=user)


def _owners(tenant) -> int:
    return Membership.objects.for_org(tenant.organization).filter(role=Role.OWNER).count()


def test_last_owner_cannot_be_demoted_removed_or_leave(tenant_a, client_for):
    """The only owner cannot demote themselves, be removed, or leave: 400, and they stay owner."""
    client = client_for(tenant_a.owner)
    own = _membership(tenant_a, tenant_a.owner)
    url = f"/api/v1/orgs/{tenant_a.slug}/members/{own.pk}/"
    demote = client.patch(url, {"role": "admin"})
    assert demote.status_code == 400
    assert "role" in demote.json()
    assert client.delete(url).status_code == 400
    own.refresh_from_db()
    assert own.role == Role.OWNER


def test_an_owner_can_step_down_when_another_remains(tenant_a, client_for):
    """With two owners, one may be demoted or leave; then the other is the last and is protected."""
    second = make_member(tenant_a.organization, Role.OWNER)
    client = client_for(tenant_a.owner)
    response = client.patch(f"/api/v1/orgs/{tenant_a.slug}/members/{second.pk}/", {"role": "admin"})
    assert response.status_code == 200, response.content
    assert response.json()["role"] == "admin"
    own = _membership(tenant_a, tenant_a.owner)
    assert client.patch(f"/api/v1/orgs/{tenant_a.slug}/members/{own.pk}/", {"role": "admin"}).status_code == 400
    assert _owners(tenant_a) == 1


@pytest.mark.parametrize(
    ("method", "body"),
    [("PATCH", {"role": "admin"}), ("DELETE", None)],
    ids=["demote", "remove"],
)
def test_admin_cannot_touch_an_owner(method, body, tenant_a, client_for):
    """An admin can neither demote nor remove an owner (403), even when several owners exist."""
    make_member(tenant_a.organization, Role.OWNER)
    target = _membership(tenant_a, tenant_a.owner)
    client = client_for(tenant_a.admin)
    url = f"/api/v1/orgs/{tenant_a.slug}/members/{target.pk}/"
    response = client.patch(url, body) if method == "PATCH" else client.delete(url)
    assert response.status_code == 403
    target.refresh_from_db()
    assert target.role == Role.OWNER


def test_admin_cannot_promote_to_owner(tenant_a, client_for):
    """Granting a role above one's own is refused."""
    target = _membership(tenant_a, tenant_a.member)
    response = client_for(tenant_a.admin).patch(f"/api/v1/orgs/{tenant_a.slug}/members/{target.pk}/", {"role": "owner"})
    assert response.status_code == 403
    target.refresh_from_db()
    assert target.role == Role.MEMBER


@pytest.mark.django_db(transaction=True)
def test_concurrent_demotion_of_two_owners_leaves_one(tenant_a, monkeypatch):
    """Two owners demoting each other at the same moment: one succeeds, one is refused, one owner remains."""
    first = _membership(tenant_a, tenant_a.owner)
    second = make_member(tenant_a.organization, Role.OWNER)
    assert _owners(tenant_a) == 2

    # Both transactions reach the owner count before either has locked anything.
    barrier = threading.Barrier(2, timeout=10)
    original = members._lock_owners

    def lock_after_both_arrived(organization):
        barrier.wait()
        return original(organization)

    monkeypatch.setattr(members, "_lock_owners", lock_after_both_arrived)
    outcomes: dict[str, object] = {}

    def demote(name, actor, target):
        try:
            members.membership_change_role(membership=target, actor=actor, role=Role.ADMIN)
            outcomes[name] = "demoted"
        except ServiceError as exc:
            outcomes[name] = exc
        except Exception as exc:  # anything else fails the test below
            outcomes[name] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=demote, args=("first demotes second", tenant_a.owner, second)),
        threading.Thread(target=demote, args=("second demotes first", second.user, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads)

    results = sorted(str(v) if v == "demoted" else type(v).__name__ for v in outcomes.values())
    assert results == ["InvalidInput", "demoted"], outcomes
    assert _owners(tenant_a) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_removal_of_two_owners_leaves_one(tenant_a, monkeypatch):
    """Two owners leaving at the same moment: one leaves, the other is refused and stays owner."""
    second = make_member(tenant_a.organization, Role.OWNER)
    first = _membership(tenant_a, tenant_a.owner)
    barrier = threading.Barrier(2, timeout=10)
    original = members._lock_owners

    def lock_after_both_arrived(organization):
        barrier.wait()
        return original(organization)

    monkeypatch.setattr(members, "_lock_owners", lock_after_both_arrived)
    outcomes: list[object] = []

    def leave(membership):
        try:
            members.membership_remove(membership=membership, actor=membership.user)
            outcomes.append("left")
        except Exception as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=leave, args=(m,)) for m in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["InvalidInput", "left"]
    assert _owners(tenant_a) == 1
