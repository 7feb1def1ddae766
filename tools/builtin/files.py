"""files_*: read, write, list, move and delete inside the organization's storage only."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import quote

from accounts.roles import Scope
from tools.context import ToolContext
from tools.errors import ToolFailed
from tools.registry import Tool
from tools.storage import Entry
from tools.types import SideEffect

MAX_READ = 1024 * 1024
MAX_WRITE = 5 * 1024 * 1024
PATH = {"type": "string", "minLength": 1, "maxLength": 1024, "description": "A path inside the organization's files."}


def download_link(ctx: ToolContext, path: str) -> str:
    return f"/api/v1/orgs/{ctx.organization.slug}/files/download/?path={quote(path)}"


def _entry(entry: Entry) -> dict[str, Any]:
    return {"name": entry.name, "path": entry.path, "is_dir": entry.is_dir, "size": entry.size}


def files_list(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    entries = ctx.storage().list(args.get("path", ""))
    return {"entries": [_entry(e) for e in entries[:500]], "truncated": len(entries) > 500}


def files_read(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    data = ctx.storage().read(args["path"], limit=MAX_READ)
    try:
        return {"path": args["path"], "size": len(data), "text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"path": args["path"], "size": len(data), "base64": base64.b64encode(data).decode()}


def _content(args: dict[str, Any]) -> bytes:
    if "base64" in args:
        try:
            return base64.b64decode(args["base64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ToolFailed("base64 content does not decode", code="invalid_arguments") from exc
    return str(args.get("text", "")).encode()


def files_write(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    storage = ctx.storage()
    data = _content(args)
    if len(data) > MAX_WRITE:
        raise ToolFailed(f"files are limited to {MAX_WRITE} bytes", code="too_large")
    existed = storage.exists(args["path"])
    entry = storage.write(args["path"], data, overwrite=bool(args.get("overwrite", False)))
    return {**_entry(entry), "created": not existed, "download_url": download_link(ctx, entry.path)}


def files_unwrite(ctx: ToolContext, args: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Compensation: remove a file the call created (an overwritten file is left as it is)."""
    if not result.get("created"):
        return {"removed": False, "note": "the call replaced an existing file; nothing to undo safely"}
    storage = ctx.storage()
    if storage.exists(result["path"]):
        storage.delete(result["path"])
    return {"removed": True, "path": result["path"]}


def files_move(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    entry = ctx.storage().move(args["source"], args["destination"], overwrite=bool(args.get("overwrite", False)))
    return {**_entry(entry), "from": args["source"]}


def files_unmove(ctx: ToolContext, args: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    entry = ctx.storage().move(result["path"], result["from"])
    return {"restored": entry.path}


def files_delete(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    ctx.storage().delete(args["path"])
    return {"deleted": args["path"]}


FILES_LIST = Tool(
    name="files_list",
    title="List files",
    description="List the files and folders at a path of the organization's file storage ('' for the top).",
    parameters={"type": "object", "properties": {"path": {**PATH, "minLength": 0}}, "additionalProperties": False},
    handler=files_list,
    scope=Scope.TOOLS_READ,
    timeout=10,
)
FILES_READ = Tool(
    name="files_read",
    title="Read a file",
    description="Read a file (up to 1 MiB) from the organization's file storage.",
    parameters={"type": "object", "properties": {"path": PATH}, "required": ["path"], "additionalProperties": False},
    handler=files_read,
    scope=Scope.TOOLS_READ,
    timeout=10,
)
FILES_WRITE = Tool(
    name="files_write",
    title="Write a file",
    description="Write a text (or base64) file into the organization's file storage; set overwrite to replace.",
    parameters={
        "type": "object",
        "properties": {
            "path": PATH,
            "text": {"type": "string", "maxLength": MAX_WRITE},
            "base64": {"type": "string", "maxLength": MAX_WRITE * 2},
            "overwrite": {"type": "boolean", "default": False},
        },
        "required": ["path"],
        "oneOf": [{"required": ["text"]}, {"required": ["base64"]}],
        "additionalProperties": False,
    },
    handler=files_write,
    compensation=files_unwrite,
    side_effect=SideEffect.WRITE,
    timeout=10,
)
FILES_MOVE = Tool(
    name="files_move",
    title="Move a file",
    description="Move or rename a file or folder inside the organization's file storage.",
    parameters={
        "type": "object",
        "properties": {"source": PATH, "destination": PATH, "overwrite": {"type": "boolean", "default": False}},
        "required": ["source", "destination"],
        "additionalProperties": False,
    },
    handler=files_move,
    compensation=files_unmove,
    side_effect=SideEffect.WRITE,
    timeout=10,
)
FILES_DELETE = Tool(
    name="files_delete",
    title="Delete a file",
    description="Delete a file (or an empty folder) from the organization's file storage.",
    parameters={"type": "object", "properties": {"path": PATH}, "required": ["path"], "additionalProperties": False},
    handler=files_delete,
    side_effect=SideEffect.WRITE,
    timeout=10,
)
