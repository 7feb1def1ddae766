"""The local HRIS stand-in (development and the offline demo): BambooHR's contract, driven by the real client."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.platform.test_settings_and_schema import ROOT, _production_env
from tests.support.hris import KEY, Running
from tools.services.compensation import compensate_group
from tools.services.credentials import credential_create
from tools.services.invocation import invoke_tool
from tools.standins.bamboohr import MAX_BODY, EmployeeStore
from tools.types import InvocationContext, Outcome

MARIA = {"first_name": "Maria", "last_name": "Lopez", "job_title": "QA engineer", "hire_date": "2027-03-01"}


@pytest.fixture
def hris(tmp_path, settings):
    running = Running(tmp_path / "employees.json")
    settings.TOOLS_INTEGRATION_URLS = {"bamboohr": running.base}
    yield running
    running.close()


def _connect(tenant, key=KEY):
    credential_create(organization=tenant.organization, actor=tenant.admin, provider="bamboohr",
                      secret={"api_key": key, "company_domain": "acme"})


def _hire(tenant, group=""):
    return invoke_tool(organization=tenant.organization, actor=tenant.manager, tool_name="hris_create_employee",
                       arguments=MARIA, context=InvocationContext(group=group))


@pytest.mark.django_db
def test_the_real_client_creates_and_its_compensation_deactivates(tenant_a, hris):
    """hris_create_employee through the stand-in: 201 + Location → the id; rollback marks the employee Inactive."""
    _connect(tenant_a)
    result = _hire(tenant_a, group="onboarding")
    assert result.ok, result.reason
    [employee] = hris.app.store.all("acme")
    assert result.result["employee_id"] == employee["id"] == "101"
    assert (employee["firstName"], employee["jobTitle"], employee["hireDate"]) == ("Maria", "QA engineer",
                                                                                    "2027-03-01")
    compensate_group(organization=tenant_a.organization, group="onboarding", actor=tenant_a.manager)
    assert hris.app.store.get("acme", 101)["status"] == "Inactive"


@pytest.mark.django_db
def test_a_wrong_key_is_refused_by_the_standin_and_nothing_is_stored(tenant_a, hris):
    _connect(tenant_a, key="not-the-key")
    result = _hire(tenant_a)
    assert result.outcome == Outcome.REFUSED
    assert "401" in result.reason
    assert hris.app.store.all("acme") == []


def test_the_contract_answers(hris):
    """Names required (400 with BambooHR's error header), bad JSON 400, unknown ids 404, other verbs 405, a body
    over the limit 413, and the directory lists everyone per company."""
    status, headers, _ = hris.request("POST", "/api/gateway.php/acme/v1/employees/", json.dumps(
        {"firstName": "Ann"}).encode())
    assert status == 400
    assert headers["X-BambooHR-Error-Message"] == "firstName and lastName are required"
    assert hris.request("POST", "/api/gateway.php/acme/v1/employees/", b"{nope")[0] == 400
    assert hris.request("POST", "/api/gateway.php/acme/v1/employees/7/", b"{}")[0] == 404
    assert hris.request("DELETE", "/api/gateway.php/acme/v1/employees/7/")[0] == 405
    assert hris.request("POST", "/api/gateway.php/acme/v1/employees/", b"x" * (MAX_BODY + 1))[0] == 413
    status, headers, _ = hris.request("POST", "/api/gateway.php/acme/v1/employees/", json.dumps(
        {"firstName": "Ann", "lastName": "Berg", "unknown": "dropped"}).encode())
    assert status == 201
    assert headers["Location"] == f"{hris.base}/api/gateway.php/acme/v1/employees/101"
    status, _, body = hris.request("GET", "/api/gateway.php/acme/v1/employees/directory")
    assert [(e["id"], e["firstName"]) for e in json.loads(body)["employees"]] == [("101", "Ann")]
    assert "unknown" not in json.loads(body)["employees"][0]
    assert json.loads(hris.request("GET", "/api/gateway.php/other/v1/employees/directory")[2])["employees"] == []
    assert hris.request("GET", "/api/gateway.php/acme/v1/employees/directory", key="wrong")[0] == 401


def test_employees_survive_a_restart_and_an_unreadable_file_is_kept_aside(tmp_path):
    data = tmp_path / "employees.json"
    first = Running(data)
    assert first.request("POST", "/api/gateway.php/acme/v1/employees/", json.dumps(
        {"firstName": "Ann", "lastName": "Berg"}).encode())[0] == 201
    first.close()
    second = Running(data)
    try:
        assert [e["firstName"] for e in second.app.store.all("acme")] == ["Ann"]
        assert second.request("POST", "/api/gateway.php/acme/v1/employees/", json.dumps(
            {"firstName": "Bo", "lastName": "Li"}).encode())[1]["Location"].endswith("/employees/102")
    finally:
        second.close()
    data.write_text("{broken")
    assert EmployeeStore(data).all("acme") == []
    assert data.with_suffix(".unreadable").read_text() == "{broken"


@pytest.mark.django_db
def test_production_never_serves_it():
    """Production forces the stand-in off, whatever the environment says."""
    result = subprocess.run([sys.executable, "manage.py", "hris_standin", "--port", "0"], cwd=ROOT, timeout=120,
                            env=_production_env(STAFFER_DEMO_HRIS="1"), capture_output=True, text=True)
    assert result.returncode != 0
    assert "never runs in production" in result.stderr


def test_development_serves_it_with_the_stack_and_points_bamboohr_at_it():
    """Local settings: `runstack` starts it and the BambooHR base URL is the stand-in, unless one is configured."""
    code = ("from django.conf import settings as s; import json; print(json.dumps([s.RUNSTACK_EXTRA_PROCESSES.get("
            "'hris'), s.TOOLS_INTEGRATION_URLS.get('bamboohr')]))")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "STAFFER_DEMO_HRIS_PORT": "8999"}
    env.pop("STAFFER_BAMBOOHR_BASE_URL", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [["hris_standin"], "http://127.0.0.1:8999"], out.stderr
    env["STAFFER_BAMBOOHR_BASE_URL"] = "https://hr.example.com"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [["hris_standin"], None]
