"""run_command: an allow-listed command in the sandbox (see ``tools.sandbox``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from tools.context import ToolContext
from tools.errors import ToolFailed, ToolRefused
from tools.registry import Tool
from tools.sandbox import Limits, resolve_command, run_sandboxed
from tools.storage import split_path
from tools.types import SideEffect

# Commands an organization may allow; its own list (config.allowed_commands) can only narrow this one.
AVAILABLE_COMMANDS = (
    "awk", "base64", "cat", "cut", "date", "diff", "echo", "grep", "head", "ls", "md5sum", "paste", "printf",
    "python3", "sed", "sha256sum", "sort", "tail", "tr", "uniq", "wc",
)
MAX_WALL = 60.0
MAX_INPUT = 2 * 1024 * 1024

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9._+-]{0,63}$"},
        "args": {"type": "array", "items": {"type": "string", "maxLength": 10000}, "maxItems": 64},
        "stdin": {"type": "string", "maxLength": MAX_INPUT},
        "files": {
            "type": "object",
            "description": "Input files to place in the working directory: name → text.",
            "propertyNames": {"pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"},
            "additionalProperties": {"type": "string", "maxLength": MAX_INPUT},
            "maxProperties": 20,
        },
        "inputs": {
            "type": "array",
            "description": "Paths in the organization's files to copy into the working directory.",
            "items": {"type": "string", "maxLength": 1024},
            "maxItems": 20,
        },
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WALL},
    },
    "required": ["command"],
    "additionalProperties": False,
}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "allowed_commands": {"type": "array", "items": {"type": "string", "enum": list(AVAILABLE_COMMANDS)}},
        "cpu_seconds": {"type": "integer", "minimum": 1, "maximum": 60},
        "memory_mb": {"type": "integer", "minimum": 32, "maximum": 2048},
    },
    "additionalProperties": False,
}


def allowed_commands(config: dict[str, Any]) -> set[str]:
    available = set(getattr(settings, "TOOLS_RUN_COMMAND_AVAILABLE", AVAILABLE_COMMANDS))
    chosen = config.get("allowed_commands")
    return available & set(chosen) if chosen is not None else available


def check_command(ctx: ToolContext, args: dict[str, Any]) -> None:
    if args["command"] not in allowed_commands(ctx.config):
        raise ToolRefused(f"{args['command']} is not on the list of allowed commands", code="command_refused")


def run_command(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    check_command(ctx, args)
    path = resolve_command(args["command"])
    files = {name: text.encode() for name, text in (args.get("files") or {}).items()}
    storage = ctx.storage()
    for source in args.get("inputs") or []:
        name = split_path(source)[-1]
        if name in files:
            raise ToolFailed(f"two input files are named {name!r}", code="invalid_arguments")
        files[name] = storage.read(source, limit=MAX_INPUT)
    config = ctx.config
    wall = min(float(args.get("timeout", 10.0)), MAX_WALL, max(ctx.check_deadline() - 2, 0.5))
    limits = Limits(
        cpu_seconds=int(config.get("cpu_seconds", 5)),
        memory_bytes=int(config.get("memory_mb", 512)) * 1024 * 1024,
        wall_seconds=wall,
    )
    result = run_sandboxed([path, *args.get("args", [])], stdin=(args.get("stdin") or "").encode(), files=files,
                           limits=limits)
    return {
        "exit_code": result.exit_code,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "timed_out": result.timed_out,
        "signal": result.signal,
        "duration_ms": result.duration_ms,
        "sandbox": result.sandbox,
        "stdout_truncated": result.stdout_truncated,
    }


RUN_COMMAND = Tool(
    name="run_command",
    title="Run a command",
    description=(
        "Run an allowed command (such as python3, grep, sort, wc) in an isolated sandbox with no network, "
        "a temporary working directory and strict time and memory limits. Returns exit code, stdout and stderr."
    ),
    parameters=PARAMETERS,
    handler=run_command,
    authorize=check_command,
    side_effect=SideEffect.WRITE,
    timeout=MAX_WALL + 10,
    config_schema=CONFIG_SCHEMA,
)
