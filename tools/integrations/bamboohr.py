"""hris_create_employee: add an employee in BambooHR.

Contract (documentation.bamboohr.com, "Add Employee"):
``POST /api/gateway.php/{companyDomain}/v1/employees/`` with HTTP Basic auth
(the API key as user name, any password), a JSON body with at least
``firstName`` and ``lastName`` → ``201 Created`` with the new employee's URL
in ``Location`` (its last segment is the id). The API has no delete: the
compensation marks the employee inactive (``POST …/v1/employees/{id}/`` with
``{"status": "Inactive"}``).
"""

from __future__ import annotations

import base64
from typing import Any

from tools.context import ToolContext
from tools.errors import ToolFailed
from tools.integrations.base import base_url, call, segment
from tools.registry import Tool
from tools.types import SideEffect

FIELDS = {
    "first_name": "firstName",
    "last_name": "lastName",
    "job_title": "jobTitle",
    "department": "department",
    "hire_date": "hireDate",
    "work_email": "workEmail",
    "location": "location",
    "supervisor": "supervisor",
}


def _endpoint(ctx: ToolContext) -> tuple[str, dict[str, str]]:
    secret = ctx.credential("bamboohr")
    token = base64.b64encode(f"{secret['api_key']}:x".encode()).decode()
    url = f"{base_url('bamboohr')}/api/gateway.php/{segment(secret['company_domain'])}/v1/employees"
    return url, {"Authorization": f"Basic {token}", "Accept": "application/json"}


def hris_create_employee(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    url, headers = _endpoint(ctx)
    payload = {FIELDS[k]: v for k, v in args.items() if k in FIELDS}
    response = call(ctx, "bamboohr", "POST", f"{url}/", headers=headers, json_body=payload)
    location = response.headers.get("location", "")
    employee_id = location.rstrip("/").rsplit("/", 1)[-1]
    if response.status != 201 or not employee_id.isdigit():
        raise ToolFailed(f"BambooHR answered {response.status} without the new employee's id", code="provider_error")
    return {"employee_id": employee_id, "name": f"{args['first_name']} {args['last_name']}",
            "hire_date": args.get("hire_date", "")}


def hris_deactivate_employee(ctx: ToolContext, args: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    url, headers = _endpoint(ctx)
    call(ctx, "bamboohr", "POST", f"{url}/{segment(result['employee_id'])}/", headers=headers,
         json_body={"status": "Inactive"})
    return {"employee_id": result["employee_id"], "status": "Inactive"}


HRIS_CREATE_EMPLOYEE = Tool(
    name="hris_create_employee",
    title="Create an employee in the HRIS",
    description="Add a new employee to the HR system (BambooHR): name, job title, department, hire date, email.",
    parameters={
        "type": "object",
        "properties": {
            "first_name": {"type": "string", "minLength": 1, "maxLength": 100},
            "last_name": {"type": "string", "minLength": 1, "maxLength": 100},
            "job_title": {"type": "string", "maxLength": 200},
            "department": {"type": "string", "maxLength": 200},
            "hire_date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
            "work_email": {"type": "string", "format": "email", "maxLength": 254},
            "location": {"type": "string", "maxLength": 200},
            "supervisor": {"type": "string", "maxLength": 200},
        },
        "required": ["first_name", "last_name"],
        "additionalProperties": False,
    },
    handler=hris_create_employee,
    compensation=hris_deactivate_employee,
    side_effect=SideEffect.EXTERNAL,
    provider="bamboohr",
    timeout=30,
)
