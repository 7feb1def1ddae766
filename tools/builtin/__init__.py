"""Built-in tools and integrations, registered by ``ToolsConfig.ready()``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.registry import Tool


def register_all() -> None:
    from tools.registry import register_tool

    for tool in all_builtin_tools():
        register_tool(tool)


def all_builtin_tools() -> list[Tool]:
    from tools.builtin.calendar import CALENDAR_CANCEL, CALENDAR_INVITE
    from tools.builtin.command import RUN_COMMAND
    from tools.builtin.documents import DOCUMENTS_GENERATE
    from tools.builtin.files import FILES_DELETE, FILES_LIST, FILES_MOVE, FILES_READ, FILES_WRITE
    from tools.builtin.http import HTTP_REQUEST
    from tools.builtin.mail import EMAIL_DRAFT, EMAIL_SEND
    from tools.integrations.bamboohr import HRIS_CREATE_EMPLOYEE
    from tools.integrations.github import GITHUB_COMMENT, GITHUB_CREATE_ISSUE
    from tools.integrations.payments import PAYMENTS_CREATE
    from tools.integrations.slack import SLACK_POST_MESSAGE

    return [
        HTTP_REQUEST, FILES_LIST, FILES_READ, FILES_WRITE, FILES_MOVE, FILES_DELETE, RUN_COMMAND,
        EMAIL_SEND, EMAIL_DRAFT, DOCUMENTS_GENERATE, CALENDAR_INVITE, CALENDAR_CANCEL,
        SLACK_POST_MESSAGE, GITHUB_CREATE_ISSUE, GITHUB_COMMENT, HRIS_CREATE_EMPLOYEE, PAYMENTS_CREATE,
    ]
