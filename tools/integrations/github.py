"""github_create_issue and github_comment: the GitHub REST API (v2022-11-28).

Contract: ``POST /repos/{owner}/{repo}/issues`` with ``{"title", "body",
"labels"}`` → 201 and the issue (``number``, ``html_url``);
``POST /repos/{owner}/{repo}/issues/{number}/comments`` with ``{"body"}`` →
201 and the comment (``id``). Compensations close the issue
(``PATCH …/issues/{number}`` with ``state: closed``) or delete the comment
(``DELETE …/issues/comments/{id}`` → 204). The organization's
``allowed_repos`` config limits which repositories tools may touch.
"""

from __future__ import annotations

from typing import Any

from accounts.errors import Forbidden
from tools.context import ToolContext
from tools.integrations.base import base_url, call, segment
from tools.registry import Tool
from tools.types import SideEffect

API_VERSION = "2022-11-28"
REPO = {"type": "string", "pattern": r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$", "description": "owner/repo"}
CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"allowed_repos": {"type": "array", "items": REPO}},
    "additionalProperties": False,
}


def _headers(ctx: ToolContext) -> dict[str, str]:
    token = ctx.credential("github")["token"]
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
    }


def _repo_url(repo: str) -> str:
    owner, name = repo.split("/", 1)
    return f"{base_url('github')}/repos/{segment(owner)}/{segment(name)}"


def check_repo(ctx: ToolContext, args: dict[str, Any]) -> None:
    allowed = ctx.config.get("allowed_repos")
    if allowed is not None and args["repo"].lower() not in {r.lower() for r in allowed}:
        raise Forbidden(f"{args['repo']} is not one of this organization's allowed repositories")


def github_create_issue(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {"title": args["title"], "body": args.get("body", "")}
    if args.get("labels"):
        payload["labels"] = args["labels"]
    issue = call(ctx, "github", "POST", f"{_repo_url(args['repo'])}/issues", headers=_headers(ctx),
                 json_body=payload).json()
    assert isinstance(issue, dict)
    return {"repo": args["repo"], "number": issue["number"], "url": issue.get("html_url", ""),
            "state": issue.get("state", "open")}


def github_close_issue(ctx: ToolContext, args: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    url = f"{_repo_url(result['repo'])}/issues/{int(result['number'])}"
    issue = call(ctx, "github", "PATCH", url, headers=_headers(ctx),
                 json_body={"state": "closed", "state_reason": "not_planned"}).json()
    assert isinstance(issue, dict)
    return {"number": result["number"], "state": issue.get("state")}


def github_comment(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    url = f"{_repo_url(args['repo'])}/issues/{int(args['number'])}/comments"
    comment = call(ctx, "github", "POST", url, headers=_headers(ctx), json_body={"body": args["body"]}).json()
    assert isinstance(comment, dict)
    return {"repo": args["repo"], "number": args["number"], "comment_id": comment["id"],
            "url": comment.get("html_url", "")}


def github_delete_comment(ctx: ToolContext, args: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    url = f"{_repo_url(result['repo'])}/issues/comments/{int(result['comment_id'])}"
    call(ctx, "github", "DELETE", url, headers=_headers(ctx))
    return {"deleted": result["comment_id"]}


GITHUB_CREATE_ISSUE = Tool(
    name="github_create_issue",
    title="Create a GitHub issue",
    description="Open an issue in one of the organization's GitHub repositories.",
    parameters={
        "type": "object",
        "properties": {
            "repo": REPO,
            "title": {"type": "string", "minLength": 1, "maxLength": 256},
            "body": {"type": "string", "maxLength": 65536},
            "labels": {"type": "array", "items": {"type": "string", "maxLength": 50}, "maxItems": 20},
        },
        "required": ["repo", "title"],
        "additionalProperties": False,
    },
    handler=github_create_issue,
    compensation=github_close_issue,
    authorize=check_repo,
    side_effect=SideEffect.EXTERNAL,
    provider="github",
    config_schema=CONFIG_SCHEMA,
    timeout=30,
)
GITHUB_COMMENT = Tool(
    name="github_comment",
    title="Comment on a GitHub issue",
    description="Add a comment to an issue or pull request in one of the organization's GitHub repositories.",
    parameters={
        "type": "object",
        "properties": {
            "repo": REPO,
            "number": {"type": "integer", "minimum": 1},
            "body": {"type": "string", "minLength": 1, "maxLength": 65536},
        },
        "required": ["repo", "number", "body"],
        "additionalProperties": False,
    },
    handler=github_comment,
    compensation=github_delete_comment,
    authorize=check_repo,
    side_effect=SideEffect.EXTERNAL,
    provider="github",
    config_schema=CONFIG_SCHEMA,
    timeout=30,
)
