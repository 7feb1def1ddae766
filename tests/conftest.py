"""Default fixtures: two organizations, each with a user of every role."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from rest_framework.test import APIClient

from accounts.models import Organization, User
from accounts.roles import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory


@dataclass
class Tenant:
    organization: Organization
    users: dict[Role, User] = field(default_factory=dict)

    @property
    def owner(self) -> User:
        return self.users[Role.OWNER]

    @property
    def admin(self) -> User:
        return self.users[Role.ADMIN]

    @property
    def manager(self) -> User:
        return self.users[Role.MANAGER]

    @property
    def member(self) -> User:
        return self.users[Role.MEMBER]

    @property
    def viewer(self) -> User:
        return self.users[Role.VIEWER]

    @property
    def slug(self) -> str:
        return self.organization.slug


def make_tenant(slug: str, name: str) -> Tenant:
    organization = OrganizationFactory(slug=slug, name=name)
    tenant = Tenant(organization=organization)
    for role in Role:
        user = UserFactory(email=f"{role.slug}@{slug}.test")
        MembershipFactory(organization=organization, user=user, role=role)
        tenant.users[role] = user
    return tenant


@pytest.fixture
def tenant_a(db) -> Tenant:
    return make_tenant("acme", "Acme Corp")


@pytest.fixture
def tenant_b(db) -> Tenant:
    return make_tenant("globex", "Globex Inc")


@pytest.fixture
def tenants(tenant_a, tenant_b) -> tuple[Tenant, Tenant]:
    return tenant_a, tenant_b


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for():
    """An API client logged in (by session) as the given user."""

    def make(user: User) -> APIClient:
        client = APIClient()
        client.force_authenticate(user=None)
        client.force_login(user)
        return client

    return make


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """One real worker for the session (tests using it need ``transactional_db``)."""
    from tests.support.worker import Worker, purge_broker

    with django_db_blocker.unblock():
        purge_broker()
        worker = Worker("session").start()
    yield worker
    worker.stop()
