"""Email login users, and roles ordered from least to most trusted."""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth import authenticate

from accounts.errors import Conflict, InvalidInput
from accounts.models import User
from accounts.roles import ROLE_SCOPES, Role, Scope, scopes_for_role
from accounts.services.users import user_sign_up


def test_user_logs_in_with_email(db):
    """A user signs up with an email address (stored lower-case) and authenticates with it in any case."""
    user = user_sign_up(email="  Ada.Lovelace@Example.TEST ", password="analytical-engine-1843", full_name="Ada")
    assert user.email == "ada.lovelace@example.test"
    assert User.USERNAME_FIELD == "email"
    assert authenticate(username="ada.lovelace@example.test", password="analytical-engine-1843") == user
    assert authenticate(username="ada.lovelace@example.test", password="wrong") is None


def test_email_is_unique_whatever_its_case(db):
    """Signing up again with the same address in another case is a conflict on the email field."""
    user_sign_up(email="grace@example.test", password="cobol-compiler-1959")
    with pytest.raises(Conflict) as refused:
        user_sign_up(email="GRACE@example.test", password="cobol-compiler-1959")
    assert refused.value.field == "email"
    assert User.objects.filter(email__iexact="grace@example.test").count() == 1


def test_weak_password_is_refused_on_the_password_field(db):
    """Password validation runs at sign-up and names the field."""
    with pytest.raises(InvalidInput) as refused:
        user_sign_up(email="weak@example.test", password="123")
    assert refused.value.field == "password"
    assert not User.objects.filter(email="weak@example.test").exists()


def test_roles_are_ordered_and_each_includes_the_ones_below():
    """Viewer < member < manager < admin < owner, and a higher role has every scope of a lower one."""
    ordered = sorted(Role)
    assert [r.slug for r in ordered] == ["viewer", "member", "manager", "admin", "owner"]
    for lower, higher in itertools.pairwise(ordered):
        assert ROLE_SCOPES[lower] <= ROLE_SCOPES[higher], f"{higher.slug} lacks some of {lower.slug}'s scopes"


def test_every_scope_belongs_to_some_role_and_roles_grant_only_known_scopes():
    """Scopes granted by roles are all declared, and the owner holds every declared scope."""
    granted = set().union(*ROLE_SCOPES.values())
    assert granted <= Scope.all()
    assert scopes_for_role(Role.OWNER) == Scope.all()


@pytest.mark.parametrize(
    ("role", "scope", "has"),
    [
        (Role.VIEWER, Scope.TASKS_READ, True),
        (Role.VIEWER, Scope.TASKS_WRITE, False),
        (Role.MEMBER, Scope.TASKS_EXECUTE, True),
        (Role.MEMBER, Scope.APPROVALS_DECIDE, False),
        (Role.MANAGER, Scope.APPROVALS_DECIDE, True),
        (Role.MANAGER, Scope.AUDIT_READ, True),
        (Role.MANAGER, Scope.MEMBERS_MANAGE, False),
        (Role.ADMIN, Scope.MEMBERS_MANAGE, True),
        (Role.ADMIN, Scope.TOOLS_FINANCIAL, True),
    ],
)
def test_key_role_scopes(role, scope, has):
    """The scopes that gate the sensitive operations sit at the intended roles."""
    assert (scope in scopes_for_role(role)) is has
