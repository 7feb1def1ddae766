"""A local HRIS that answers BambooHR's employee API, for development and the offline demo.

Contract followed (documentation.bamboohr.com):

* ``POST /api/gateway.php/{company}/v1/employees/`` — add an employee (JSON with
  at least ``firstName`` and ``lastName``) → ``201`` with the new employee's URL
  in ``Location``; a missing name → ``400`` with ``X-BambooHR-Error-Message``.
* ``POST /api/gateway.php/{company}/v1/employees/{id}/`` — update fields (the
  integration's compensation sets ``status`` to ``Inactive``) → ``200``.
* ``GET /api/gateway.php/{company}/v1/employees/{id}/`` — one employee's fields.
* ``GET /api/gateway.php/{company}/v1/employees/directory`` — everyone.

Every request needs HTTP Basic auth with the configured API key as the user
name (any password), as BambooHR does; otherwise ``401``. Employees are kept
in a JSON file (written atomically) so they survive a restart of the stack.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
FIELDS = ("firstName", "lastName", "jobTitle", "department", "hireDate", "workEmail", "location", "supervisor",
          "status")
_EMPLOYEES = re.compile(r"^/api/gateway\.php/([A-Za-z0-9_.-]+)/v1/employees/?$")
_EMPLOYEE = re.compile(r"^/api/gateway\.php/([A-Za-z0-9_.-]+)/v1/employees/(\d+)/?$")
_DIRECTORY = re.compile(r"^/api/gateway\.php/([A-Za-z0-9_.-]+)/v1/employees/directory/?$")
FIRST_ID = 101

Answer = tuple[int, dict[str, str], bytes]


class EmployeeStore:
    """Employees per company, in memory and mirrored to a JSON file (``None``: memory only)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, dict[str, Any]]] = {}
        if path is not None and path.exists():
            try:
                self._data = json.loads(path.read_text())
            except (OSError, ValueError):
                logger.exception("HRIS stand-in: %s is unreadable; starting empty (the file is kept aside)", path)
                path.replace(path.with_suffix(".unreadable"))

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._data, indent=1, sort_keys=True))
        os.replace(temporary, self.path)

    def add(self, company: str, fields: dict[str, Any]) -> int:
        with self._lock:
            employees = self._data.setdefault(company, {})
            employee_id = max((int(k) for k in employees), default=FIRST_ID - 1) + 1
            employees[str(employee_id)] = {**fields, "status": fields.get("status") or "Active"}
            self._save()
            return employee_id

    def update(self, company: str, employee_id: int, fields: dict[str, Any]) -> bool:
        with self._lock:
            employee = self._data.get(company, {}).get(str(employee_id))
            if employee is None:
                return False
            employee.update(fields)
            self._save()
            return True

    def get(self, company: str, employee_id: int) -> dict[str, Any] | None:
        with self._lock:
            employee = self._data.get(company, {}).get(str(employee_id))
            return None if employee is None else {"id": str(employee_id), **employee}

    def all(self, company: str) -> list[dict[str, Any]]:
        with self._lock:
            return [{"id": k, **v} for k, v in sorted(self._data.get(company, {}).items(), key=lambda i: int(i[0]))]


class BambooHRStandIn:
    """The request handling, independent of the HTTP server (so it is easy to test and to embed)."""

    def __init__(self, *, api_key: str, store: EmployeeStore, public_base: str = "") -> None:
        if not api_key:
            raise ValueError("the HRIS stand-in needs an API key")
        self.api_key = api_key
        self.store = store
        self.public_base = public_base.rstrip("/")

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user = base64.b64decode(encoded, validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user.encode(), self.api_key.encode())

    @staticmethod
    def _json(status: int, data: Any) -> Answer:
        return status, {"Content-Type": "application/json"}, json.dumps(data).encode()

    @staticmethod
    def _error(status: int, message: str) -> Answer:
        return status, {"X-BambooHR-Error-Message": message}, b""

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        path = path.split("?", 1)[0]
        if not self._authorized(headers):
            return self._error(401, "Unauthorized: an API key is the Basic auth user name")
        if method == "GET" and (match := _DIRECTORY.match(path)):
            return self._json(200, {"fields": [{"id": f} for f in FIELDS], "employees": self.store.all(match[1])})
        if method == "GET" and (match := _EMPLOYEE.match(path)):
            employee = self.store.get(match[1], int(match[2]))
            return self._json(200, employee) if employee else self._error(404, "no such employee")
        if method != "POST":
            return self._error(405 if _EMPLOYEES.match(path) or _EMPLOYEE.match(path) else 404, "not supported")
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return self._error(400, "the body is not JSON")
        if not isinstance(data, dict):
            return self._error(400, "the body is not a JSON object")
        fields = {k: str(v) for k, v in data.items() if k in FIELDS and v is not None}
        if match := _EMPLOYEES.match(path):
            if not fields.get("firstName") or not fields.get("lastName"):
                return self._error(400, "firstName and lastName are required")
            employee_id = self.store.add(match[1], fields)
            location = f"{self.public_base}/api/gateway.php/{match[1]}/v1/employees/{employee_id}"
            logger.info("HRIS stand-in: added employee %s (%s %s)", employee_id, fields["firstName"],
                        fields["lastName"])
            return 201, {"Location": location}, b""
        if match := _EMPLOYEE.match(path):
            if not self.store.update(match[1], int(match[2]), fields):
                return self._error(404, "no such employee")
            return 200, {}, b""
        return self._error(404, "not found")


def make_server(host: str, port: int, app: BambooHRStandIn) -> ThreadingHTTPServer:
    """A threading HTTP server answering with ``app`` (``port`` 0 picks a free one)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "StafferHRISStandIn/1"

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("HRIS stand-in: " + format, *args)

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                status, headers, payload = app._error(413, "request too large")
            else:
                body = self.rfile.read(length) if length else b""
                lowered = {k.lower(): v for k, v in self.headers.items()}
                status, headers, payload = app.handle(self.command, self.path, lowered, body)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    if not app.public_base:
        app.public_base = f"http://{host}:{server.server_address[1]}"
    return server
