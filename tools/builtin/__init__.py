"""Built-in tools and integrations, registered by ``ToolsConfig.ready()``."""

from __future__ import annotations


def register_all() -> None:
    from tools.registry import register_tool

    for tool in all_builtin_tools():
        register_tool(tool)


def all_builtin_tools() -> list:  # type: ignore[type-arg]
    return []
