"""github_create_issue / github_comment against a local stand-in following GitHub's REST contract."""

from __future__ import annotations

import pytest

from tools.services.compensation import compensate_group
from tools.services.invocation import invoke_tool
from tools.services.settings import tool_setting_update
from tools.types import CompensationStatus, InvocationContext, Outcome

from .support.providers import GITHUB_TOKEN

pytestmark = pytest.mark.django_db


def _call(tenant, tool, group="", **arguments):
    return invoke_tool(organization=tenant.organization, actor=tenant.member, tool_name=tool, arguments=arguments,
                       context=InvocationContext(group=group))


def test_issue_and_comment(tenant_a, credentials):
    """An issue is created with the API's headers and a comment is added to it."""
    issue = _call(tenant_a, "github_create_issue", repo="acme/web", title="Onboard Maria", labels=["hr"])
    assert issue.ok, issue.reason
    assert issue.result["number"] == 1
    assert issue.result["url"] == "https://github.com/acme/web/issues/1"
    request = credentials.requests[-1]
    assert request["headers"]["x-github-api-version"] == "2022-11-28"
    comment = _call(tenant_a, "github_comment", repo="acme/web", number=1, body="Laptop ordered")
    assert comment.ok
    assert credentials.comments[comment.result["comment_id"]]["body"] == "Laptop ordered"
    assert GITHUB_TOKEN not in str(issue.tool_call.result) + str(comment.tool_call.result)


def test_validation_error_and_missing_issue(tenant_a, credentials):
    """GitHub's 404 for a missing issue is refused with its message."""
    missing = _call(tenant_a, "github_comment", repo="acme/web", number=99, body="x")
    assert missing.outcome == Outcome.REFUSED
    assert "Not Found" in missing.reason


def test_repo_allow_list(tenant_a, credentials):
    """With allowed_repos set, another repository is forbidden before any request."""
    tool_setting_update(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="github_create_issue",
                        config={"allowed_repos": ["acme/web"]})
    result = _call(tenant_a, "github_create_issue", repo="acme/secret-infra", title="x")
    assert result.code == "forbidden"
    assert credentials.requests == []


def test_path_injection_in_repo_refused(tenant_a, credentials):
    """A repo name that tries to add path segments or a query does not match the schema."""
    for repo in ("acme/web/../../user", "acme/web?x=1", "../x", "acme%2Fweb/x"):
        assert _call(tenant_a, "github_create_issue", repo=repo, title="x").code == "invalid_arguments"


def test_rollback_closes_issue_and_deletes_comment(tenant_a, credentials):
    """Compensation deletes the comment first, then closes the issue."""
    issue = _call(tenant_a, "github_create_issue", group="g", repo="acme/web", title="t")
    comment = _call(tenant_a, "github_comment", group="g", repo="acme/web", number=issue.result["number"],
                    body="c")
    report = compensate_group(organization=tenant_a.organization, group="g", actor=tenant_a.member)
    assert report.compensated == [comment.tool_call.pk, issue.tool_call.pk]
    assert credentials.comments == {}
    assert credentials.issues[1]["state"] == "closed"
    comment.tool_call.refresh_from_db()
    assert comment.tool_call.compensation_status == CompensationStatus.COMPENSATED
