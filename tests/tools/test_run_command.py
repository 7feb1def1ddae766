"""run_command: allow list and sandbox containment (fork bomb, memory, CPU, files, network, environment)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tools import sandbox
from tools.services.invocation import invoke_tool
from tools.services.settings import tool_setting_update
from tools.storage import OrgStorage
from tools.types import Outcome

from .support.servers import Canary

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def _run(tenant, command, *args, **extra):
    return invoke_tool(organization=tenant.organization, actor=tenant.member, tool_name="run_command",
                       arguments={"command": command, "args": list(args), **extra})


def _py(tenant, code, **extra):
    return _run(tenant, "python3", "-c", code, **extra)


def _nobody_processes():
    """Live (not zombie) processes of the sandbox user; exited ones wait for the container's init to reap them."""
    out = subprocess.run(["ps", "-u", str(sandbox.NOBODY), "-o", "pid=,stat="], capture_output=True, text=True,
                         check=False)
    return [line for line in out.stdout.splitlines() if line.strip() and "Z" not in line.split()[1]]


@pytest.fixture(autouse=True)
def _no_strays():
    yield
    deadline = time.monotonic() + 5
    while _nobody_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _nobody_processes() == [], "sandboxed processes outlived their run"


def test_runs_an_allowed_command(tenant_a):
    """An allowed command runs in the sandbox and returns its output."""
    result = _run(tenant_a, "sort", stdin="b\na\nc\n")
    assert result.ok, result.reason
    assert result.result["stdout"] == "a\nb\nc\n"
    assert result.result["exit_code"] == 0
    assert result.result["sandbox"] == "bwrap"


def test_command_off_the_list_refused(tenant_a):
    """A command not on the list (or a path) is refused before anything runs."""
    assert _run(tenant_a, "bash", "-c", "id").code == "command_refused"
    assert _run(tenant_a, "curl").code == "command_refused"
    path = _run(tenant_a, "/usr/bin/python3")
    assert path.outcome == Outcome.REFUSED
    tool_setting_update(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="run_command",
                        config={"allowed_commands": ["wc"]})
    assert _run(tenant_a, "sort").code == "command_refused"
    assert _run(tenant_a, "wc", "-l", stdin="a\nb\n").ok


def test_input_files_from_storage(tenant_a):
    """Files named in inputs are copied from the organization's storage into the working directory."""
    OrgStorage(tenant_a.organization.pk).write("data/numbers.txt", b"3\n1\n2\n")
    result = _run(tenant_a, "sort", "-n", "numbers.txt", inputs=["data/numbers.txt"])
    assert result.result["stdout"] == "1\n2\n3\n"


def test_fork_bomb_is_contained(tenant_a):
    """A fork bomb hits the process limit, is killed at the wall clock, and leaves no process behind."""
    bomb = (
        "import os\n"
        "n = 0\n"
        "while True:\n"
        "    try:\n"
        "        os.fork(); n += 1\n"
        "    except OSError:\n"
        "        pass\n"
    )
    started = time.monotonic()
    result = _py(tenant_a, bomb, timeout=2)
    assert time.monotonic() - started < 10
    assert result.ok
    assert result.result["timed_out"] is True or result.result["exit_code"] != 0


def test_memory_hog_is_stopped(tenant_a):
    """Allocating past the memory limit fails inside the sandbox."""
    result = _py(tenant_a, "x = bytearray(2 * 1024 * 1024 * 1024)\nprint('allocated')")
    assert result.result["exit_code"] != 0
    assert "MemoryError" in result.result["stderr"]
    assert "allocated" not in result.result["stdout"]


def test_busy_loop_is_stopped_by_cpu_limit(tenant_a):
    """A busy loop is killed by the CPU limit (before the wall clock)."""
    tool_setting_update(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="run_command",
                        config={"cpu_seconds": 1})
    started = time.monotonic()
    result = _py(tenant_a, "while True: pass", timeout=20)
    assert time.monotonic() - started < 8
    assert result.result["exit_code"] != 0
    assert result.result["timed_out"] is False


def test_wall_clock_timeout(tenant_a):
    """A sleeping command is killed at the wall-clock timeout."""
    started = time.monotonic()
    result = _py(tenant_a, "import time; time.sleep(30)", timeout=1)
    assert time.monotonic() - started < 6
    assert result.result["timed_out"] is True


def test_cannot_write_outside_the_work_dir(tenant_a, tmp_path):
    """The host is read-only or invisible: /usr, a host folder and /etc cannot be written; the work dir can."""
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    os.chmod(host_dir, 0o777)
    code = (
        "import os\n"
        "results = []\n"
        f"for target in ['/usr/evil', '{host_dir}/evil', '/etc/evil', '/proc/evil', '/evil']:\n"
        "    try:\n"
        "        open(target, 'w').write('x')\n"
        "        results.append('wrote ' + target)\n"
        "    except OSError as exc:\n"
        "        results.append('refused ' + target)\n"
        "open('inside.txt', 'w').write('ok')\n"
        "print(';'.join(results))\n"
    )
    result = _py(tenant_a, code)
    assert result.result["exit_code"] == 0, result.result["stderr"]
    assert "wrote" not in result.result["stdout"]
    assert not (host_dir / "evil").exists()
    assert not os.path.exists("/usr/evil")


def test_file_size_limit(tenant_a):
    """Writing a file past the size limit is stopped."""
    result = _py(tenant_a, "open('big', 'wb').write(b'x' * (64 * 1024 * 1024))")
    assert result.result["exit_code"] != 0


def test_no_network(tenant_a):
    """The sandbox has no network: a loopback canary sees no connection and names do not resolve."""
    canary = Canary()
    try:
        code = (
            "import socket\n"
            "for target in [('127.0.0.1', PORT), ('93.184.216.34', 80)]:\n"
            "    try:\n"
            "        socket.create_connection(target, timeout=2); print('connected', target)\n"
            "    except OSError as exc:\n"
            "        print('refused', target)\n"
            "try:\n"
            "    socket.getaddrinfo('example.com', 80); print('resolved')\n"
            "except OSError:\n"
            "    print('no dns')\n"
        ).replace("PORT", str(canary.port))
        result = _py(tenant_a, code)
        assert "connected" not in result.result["stdout"]
        assert "no dns" in result.result["stdout"]
        time.sleep(0.3)
        assert canary.connections == 0
    finally:
        canary.close()


def test_host_environment_and_files_are_invisible(tenant_a, monkeypatch):
    """Secrets in the worker's environment, host files and host processes are not visible inside."""
    monkeypatch.setenv("STAFFER_CANARY_SECRET", "do-not-leak-7731")
    code = (
        "import os\n"
        "print(sorted(os.environ))\n"
        "print(os.path.exists('/etc/passwd'), os.path.exists('/root'), os.path.exists('/work/main'))\n"
        "print(sorted(p for p in os.listdir('/proc') if p.isdigit()))\n"
        "print(open('/proc/1/environ').read())\n"
    )
    result = _py(tenant_a, code)
    out = result.result["stdout"]
    assert "do-not-leak-7731" not in out
    assert "STAFFER_CANARY_SECRET" not in out
    assert "SECRET_KEY" not in out
    lines = out.splitlines()
    assert lines[1] == "False False False"
    assert len(eval(lines[2])) <= 3  # only the sandbox's own processes


def test_fallback_without_bwrap_still_isolates_network(tenant_a, settings):
    """Where bubblewrap cannot run, the unshare fallback still has no network and the same limits."""
    settings.TOOLS_SANDBOX_BWRAP = "/nonexistent/bwrap"
    canary = Canary()
    try:
        code = (
            "import socket\n"
            "try:\n"
            "    socket.create_connection(('127.0.0.1', PORT), timeout=2); print('connected')\n"
            "except OSError:\n"
            "    print('refused')\n"
        ).replace("PORT", str(canary.port))
        result = _py(tenant_a, code)
        assert result.result["sandbox"] == "unshare"
        assert result.result["stdout"].strip() == "refused"
        memory = _py(tenant_a, "x = bytearray(2 * 1024 * 1024 * 1024)")
        assert "MemoryError" in memory.result["stderr"]
        assert canary.connections == 0
    finally:
        canary.close()
