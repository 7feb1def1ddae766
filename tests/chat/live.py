"""A real daphne (HTTP and WebSocket) on the test database, restartable on one port, for browser and soak tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Daphne:
    """daphne in a child process (forked from the test, so it shares its settings and test database)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self) -> Daphne:
        from channels.testing.live import make_application, set_database_connection
        from daphne.testing import DaphneProcess
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
        from django.db import connections

        connections.close_all()  # the child must not share this process's database sockets
        self.process = DaphneProcess(
            "localhost", partial(make_application, static_wrapper=ASGIStaticFilesHandler),
            port=self.port, setup=set_database_connection,
        )
        self.process.start()
        if not self.process.ready.wait(timeout=30):
            raise RuntimeError("daphne did not start")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.join(timeout=10)
            self.process = None


class DaphneCommand:
    """The ``daphne`` command itself, as production runs it (``config.asgi:application``), on a free port."""

    def __init__(self, *, database: str, redis_base: int, log: Path) -> None:
        self.port = free_port()
        self.database = database
        self.redis_base = redis_base
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> DaphneCommand:
        settings_module = os.environ.get("CHAT_DAPHNE_SETTINGS", "config.settings.test")  # experiments only
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "STAFFER_DB_NAME": self.database,
               "STAFFER_REDIS_DB_BASE": str(self.redis_base), "PYTHONUNBUFFERED": "1"}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited early; see {self.log}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"daphne did not listen; see {self.log}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
