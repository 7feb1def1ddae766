"""hris_create_employee against a local stand-in following BambooHR's "add employee" contract."""

from __future__ import annotations

import pytest

from tools.services.compensation import compensate_group
from tools.services.invocation import invoke_tool
from tools.types import InvocationContext, Outcome

pytestmark = pytest.mark.django_db

MARIA = {"first_name": "Maria", "last_name": "Lopez", "job_title": "QA Engineer", "hire_date": "2026-03-01",
         "work_email": "maria.lopez@acme.test", "department": "Engineering", "supervisor": "Dana Kim"}


def _create(tenant, group="", key="", **arguments):
    return invoke_tool(organization=tenant.organization, actor=tenant.manager, tool_name="hris_create_employee",
                       arguments=arguments, idempotency_key=key, context=InvocationContext(group=group))


def test_employee_created_with_basic_auth(tenant_a, credentials):
    """The employee is created with BambooHR's field names; the id comes from the Location header."""
    result = _create(tenant_a, **MARIA)
    assert result.ok, result.reason
    assert result.result["employee_id"] == "101"
    employee = credentials.employees[101]
    assert employee["firstName"] == "Maria"
    assert employee["jobTitle"] == "QA Engineer"
    assert employee["hireDate"] == "2026-03-01"


def test_retry_creates_one_employee(tenant_a, credentials):
    """The same invocation retried creates the employee once."""
    for _ in range(3):
        assert _create(tenant_a, key="hire-maria", **MARIA).ok
    assert len(credentials.employees) == 1


def test_bad_input_refused_before_the_provider(tenant_a, credentials):
    """A missing last name or a malformed date is refused by the schema; nothing is sent."""
    assert _create(tenant_a, first_name="Maria").code == "invalid_arguments"
    assert _create(tenant_a, first_name="M", last_name="L", hire_date="1 March").code == "invalid_arguments"
    assert credentials.requests == []


def test_provider_auth_failure(tenant_a, credentials):
    """A 401 from BambooHR is a refusal with a reason."""
    credentials.fail_next["bamboo"] = (401, "")
    result = _create(tenant_a, **MARIA)
    assert result.outcome == Outcome.REFUSED
    assert "401" in result.reason


def test_rollback_deactivates(tenant_a, credentials):
    """Compensation marks the created employee inactive (the API has no delete)."""
    _create(tenant_a, group="onboarding", **MARIA)
    compensate_group(organization=tenant_a.organization, group="onboarding", actor=tenant_a.manager)
    assert credentials.employees[101]["status"] == "Inactive"
