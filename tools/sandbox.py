"""Running an allow-listed command in a sandbox.

SECURITY: the command runs under bubblewrap with every namespace unshared
(no network: only a down loopback; its own PID namespace, so killing bwrap
ends every process it started), read-only ``/usr`` (with the ``/bin``,
``/lib``, ``/lib64`` links), a fresh ``/proc`` and ``/dev``, a tmpfs ``/tmp``,
a temporary working directory as the only writable host folder, an empty
environment, and no capabilities. Before exec it gets resource limits
(CPU seconds, address space, processes, file size, open files, no core
dumps), its own session, and, when the worker runs as root, an unprivileged
uid (root ignores the process limit). A wall-clock timeout kills the whole
process group. Where bubblewrap cannot run, the fallback is ``unshare`` (a new
user and network namespace) with the same limits; where neither works, the
command is refused rather than run unconfined.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from tools.errors import ToolFailed

SANDBOX_PATH = "/usr/bin:/bin"
NOBODY = 65534


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 5
    memory_bytes: int = 512 * 1024 * 1024
    processes: int = 32
    file_bytes: int = 16 * 1024 * 1024
    open_files: int = 64
    wall_seconds: float = 10.0
    output_bytes: int = 64 * 1024


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    signal: str
    duration_ms: int
    sandbox: str
    stdout_truncated: bool = False
    stderr_truncated: bool = False


class SandboxUnavailable(ToolFailed):
    code = "sandbox_unavailable"


def _setting(name: str, default: object) -> object:
    return getattr(settings, name, default)


def _bwrap_path() -> str:
    return str(_setting("TOOLS_SANDBOX_BWRAP", "/usr/bin/bwrap"))


def _sandbox_uid() -> int | None:
    """The uid to run as: unprivileged when the worker is root (root bypasses RLIMIT_NPROC)."""
    if os.geteuid() != 0:
        return None
    return int(_setting("TOOLS_SANDBOX_UID", NOBODY))  # type: ignore[call-overload]


def _preexec(limits: Limits, uid: int | None) -> Callable[[], None]:
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)

    return apply


def _bwrap_argv(bwrap: str, workdir: str, argv: list[str]) -> list[str]:
    args = [
        bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
        "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",  # noqa: S108 - the sandbox's own tmpfs
        "--bind", workdir, "/work", "--chdir", "/work",
        "--remount-ro", "/",
        "--clearenv", "--setenv", "PATH", SANDBOX_PATH, "--setenv", "HOME", "/work", "--setenv", "LANG", "C.UTF-8",
        "--",
    ]
    return args + argv


def _unshare_argv(argv: list[str]) -> list[str]:
    return ["unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "--mount-proc",
            "--", *argv]


@functools.cache
def _works(kind: str, bwrap: str, uid: int | None) -> bool:
    """Whether this kind of sandbox starts on this machine (probed once per process)."""
    with tempfile.TemporaryDirectory(prefix="staffer-probe-") as workdir:
        if uid is not None:
            os.chown(workdir, uid, uid)
        argv = _bwrap_argv(bwrap, workdir, ["/usr/bin/true"]) if kind == "bwrap" else _unshare_argv(["/usr/bin/true"])
        try:
            completed = subprocess.run(argv, env={"PATH": SANDBOX_PATH}, preexec_fn=_preexec(Limits(), uid),
                                       capture_output=True, timeout=10, check=False, cwd=workdir)
        except (OSError, subprocess.SubprocessError):
            return False
        return completed.returncode == 0


def available_sandbox() -> str:
    """``bwrap``, ``unshare`` or ``""`` (none: commands are refused)."""
    uid = _sandbox_uid()
    bwrap = _bwrap_path()
    if os.path.exists(bwrap) and _works("bwrap", bwrap, uid):
        return "bwrap"
    if shutil.which("unshare", path=SANDBOX_PATH) and _works("unshare", bwrap, uid):
        return "unshare"
    return ""


def resolve_command(name: str) -> str:
    """The absolute path of an allow-listed command name, found under /usr only."""
    if "/" in name or name.startswith("."):
        raise ToolFailed("give the command's name, not a path", code="command_refused")
    found = shutil.which(name, path=SANDBOX_PATH)
    if found is None:
        raise ToolFailed(f"{name} is not installed", code="command_refused")
    real = os.path.realpath(found)
    if not real.startswith("/usr/"):
        raise ToolFailed(f"{name} does not live under /usr", code="command_refused")
    return found


def _read_capped(handle: object, cap: int) -> tuple[str, bool]:
    handle.seek(0)  # type: ignore[attr-defined]
    data = handle.read(cap + 1)  # type: ignore[attr-defined]
    return data[:cap].decode("utf-8", errors="replace"), len(data) > cap


def run_sandboxed(
    argv: list[str],
    *,
    stdin: bytes = b"",
    files: dict[str, bytes] | None = None,
    limits: Limits | None = None,
) -> SandboxResult:
    """Run ``argv`` (``argv[0]`` an absolute path under /usr) in a sandbox with a fresh working directory."""
    limits = limits or Limits()
    kind = available_sandbox()
    if not kind:
        raise SandboxUnavailable("no sandbox (bubblewrap or unshare) works on this machine; commands are refused")
    uid = _sandbox_uid()
    workdir = tempfile.mkdtemp(prefix="staffer-sbx-")
    try:
        for name, content in (files or {}).items():
            target = Path(workdir, name)
            if target.parent != Path(workdir) or name.startswith("."):
                raise ToolFailed(f"input file names are plain names: {name!r}", code="invalid_input")
            target.write_bytes(content)
        if uid is not None:
            os.chown(workdir, uid, uid)
            for name in files or {}:
                os.chown(Path(workdir, name), uid, uid)
        command = _bwrap_argv(_bwrap_path(), workdir, argv) if kind == "bwrap" else _unshare_argv(argv)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as inp:
            inp.write(stdin)
            inp.seek(0)
            started = time.monotonic()
            process = subprocess.Popen(
                command,
                stdin=inp,
                stdout=out,
                stderr=err,
                cwd=workdir,
                env={"PATH": SANDBOX_PATH, "LANG": "C.UTF-8"},
                preexec_fn=_preexec(limits, uid),
                start_new_session=True,
                close_fds=True,
            )
            timed_out = False
            try:
                process.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(process)
                process.wait(timeout=5)
            duration_ms = int((time.monotonic() - started) * 1000)
            _kill_group(process)  # stragglers of the unshare fallback
            stdout, stdout_cut = _read_capped(out, limits.output_bytes)
            stderr, stderr_cut = _read_capped(err, limits.output_bytes)
        code = process.returncode
        signame = ""
        if code is not None and code < 0:
            signame = signal.Signals(-code).name
        elif code is not None and code > 128 and kind == "bwrap":
            try:
                signame = signal.Signals(code - 128).name
            except ValueError:
                signame = ""
        return SandboxResult(exit_code=code if code is not None else -1, stdout=stdout, stderr=stderr,
                             timed_out=timed_out, signal=signame, duration_ms=duration_ms, sandbox=kind,
                             stdout_truncated=stdout_cut, stderr_truncated=stderr_cut)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
