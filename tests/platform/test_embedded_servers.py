"""The embedded servers are shared, reused, and recover from a killed run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from config import embedded

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow]


@pytest.fixture
def root():
    # Unix socket paths are limited to ~107 characters: keep this short.
    path = Path(f"/tmp/stf-emb-{os.getpid()}")
    path.mkdir(exist_ok=True)
    yield path
    embedded.wipe(path)
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def test_redis_second_start_reuses_the_running_server(root):
    """A second start returns the same socket and the same server process."""
    sock = embedded.redis_start(root)
    pid = embedded._redis_pid(root)
    assert embedded.redis_start(root) == sock
    assert embedded._redis_pid(root) == pid
    client = redis.Redis(unix_socket_path=str(sock))
    client.set("k", "v")
    assert client.get("k") == b"v"


def test_redis_recovers_from_a_killed_server(root):
    """A SIGKILLed server leaves a stale pid file and socket; the next start replaces it and keeps data."""
    sock = embedded.redis_start(root)
    redis.Redis(unix_socket_path=str(sock)).set("survivor", "1")
    time.sleep(1.2)  # appendfsync everysec
    pid = embedded._redis_pid(root)
    os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if embedded._redis_pid(root) is None:
            break
        time.sleep(0.05)
    assert sock.exists(), "the killed server should leave its socket behind"
    assert not embedded._redis_alive(sock)
    assert embedded.redis_start(root) == sock
    assert embedded._redis_pid(root) not in (None, pid)
    assert redis.Redis(unix_socket_path=str(sock)).get("survivor") == b"1"


def _servers(root: Path, command: str) -> str:
    """Run ``python -m config.servers`` in its own process, as every real process attaches."""
    env = {**os.environ, "STAFFER_VAR_DIR": str(root)}
    result = subprocess.run(
        [sys.executable, "-m", "config.servers", command],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _postmaster_pid(root: Path) -> int:
    return int((root / "pg" / "postmaster.pid").read_text().splitlines()[0])


def test_postgres_starts_reuses_and_recovers_from_a_killed_server(root):
    """PostgreSQL with pgvector starts once, is reused by the next process, and restarts after a SIGKILL."""
    _servers(root, "start")
    dsn = f"dbname={embedded.DATABASE_NAME} user=postgres host={root / 'pg'}"
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        assert conn.execute("SELECT '[1,2,3]'::vector <=> '[1,2,3]'::vector").fetchone()[0] == 0
    pid = _postmaster_pid(root)
    _servers(root, "start")
    assert _postmaster_pid(root) == pid, "a second start must reuse the running server"
    children = psutil.Process(pid).children()
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.05)
    # The postmaster's children notice its death and exit; until then they hold its shared memory.
    psutil.wait_procs(children, timeout=30)
    assert (root / "pg" / "postmaster.pid").exists(), "the killed server leaves a stale pid file"
    _servers(root, "start")
    assert _postmaster_pid(root) != pid
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1
