"""The local HRIS stand-in served on a free loopback port for a test."""

from __future__ import annotations

import base64
import threading
import urllib.error
import urllib.request
from pathlib import Path

from tools.standins.bamboohr import BambooHRStandIn, EmployeeStore, make_server

KEY = "standin-key-0123"


class Running:
    def __init__(self, data: Path, api_key: str = KEY) -> None:
        self.app = BambooHRStandIn(api_key=api_key, store=EmployeeStore(data))
        self.server = make_server("127.0.0.1", 0, self.app)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = self.app.public_base

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def request(self, method: str, path: str, body: bytes | None = None, key: str = KEY) -> tuple[int, dict, bytes]:
        auth = base64.b64encode(f"{key}:x".encode()).decode()
        req = urllib.request.Request(f"{self.base}{path}", data=body, method=method,
                                     headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()
