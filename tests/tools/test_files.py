"""files_*: the organization's storage, and no way out of it."""

from __future__ import annotations

import os

import pytest

from tools.services.compensation import compensate_group
from tools.services.invocation import invoke_tool
from tools.storage import OrgStorage
from tools.types import InvocationContext, Outcome

pytestmark = pytest.mark.django_db


def _call(tenant, tool, user=None, **arguments):
    return invoke_tool(organization=tenant.organization, actor=user or tenant.member, tool_name=tool,
                       arguments=arguments)


def test_write_read_list_move_delete(tenant_a, media_root):
    """A member writes, reads, lists, moves and deletes files under the organization's own folder."""
    written = _call(tenant_a, "files_write", path="hr/offers/maria.txt", text="Welcome, Maria")
    assert written.ok, written.reason
    assert written.result["created"] is True
    assert written.result["download_url"] == f"/api/v1/orgs/{tenant_a.slug}/files/download/?path=hr/offers/maria.txt"
    on_disk = media_root / "orgs" / str(tenant_a.organization.pk) / "hr" / "offers" / "maria.txt"
    assert on_disk.read_text() == "Welcome, Maria"
    assert _call(tenant_a, "files_read", path="hr/offers/maria.txt").result["text"] == "Welcome, Maria"
    listing = _call(tenant_a, "files_list", path="hr/offers").result["entries"]
    assert [e["name"] for e in listing] == ["maria.txt"]
    assert _call(tenant_a, "files_write", path="hr/offers/maria.txt", text="again").code == "exists"
    assert _call(tenant_a, "files_move", source="hr/offers/maria.txt", destination="hr/archive/maria.txt").ok
    assert _call(tenant_a, "files_delete", path="hr/archive/maria.txt").ok
    assert _call(tenant_a, "files_read", path="hr/archive/maria.txt").code == "not_found"


def test_binary_round_trip(tenant_a):
    """Base64 content is stored as bytes and read back as base64."""
    assert _call(tenant_a, "files_write", path="b.bin", base64="AAEC/w==").ok
    assert _call(tenant_a, "files_read", path="b.bin").result["base64"] == "AAEC/w=="


def test_viewer_reads_but_cannot_write(tenant_a):
    """A viewer may list and read, not write."""
    _call(tenant_a, "files_write", path="note.txt", text="x")
    assert _call(tenant_a, "files_read", user=tenant_a.viewer, path="note.txt").ok
    assert _call(tenant_a, "files_write", user=tenant_a.viewer, path="v.txt", text="x").code == "forbidden"


@pytest.mark.parametrize("path", [
    "../x", "../../etc/passwd", "a/../../x", "/etc/passwd", "~/x", "a\\..\\..\\x", "a/\x00b", "..",
    "a/..", "./../x", "a/b/../../../x", "\x1b[31m", "",
])
def test_path_escapes_refused(tenant_a, path, media_root):
    """Paths that climb out, are absolute or hold odd characters are refused for every operation."""
    for tool, args in (("files_read", {"path": path}), ("files_write", {"path": path, "text": "x"}),
                       ("files_delete", {"path": path}), ("files_move", {"source": "a.txt", "destination": path})):
        result = _call(tenant_a, tool, **args)
        assert result.outcome == Outcome.REFUSED, (tool, path, result.outcome, result.reason)
        assert result.code in ("path_refused", "invalid_arguments"), (tool, path, result.code)
    assert not (media_root / "x").exists()


def test_symlinks_are_never_followed(tenants, media_root, tmp_path):
    """A symlink planted in storage (to a host file or another organization) is neither read, written nor listed."""
    a, b = tenants
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host secret")
    OrgStorage(b.organization.pk).write("private/payroll.txt", b"B's payroll")
    root_a = media_root / "orgs" / str(a.organization.pk)
    root_a.mkdir(parents=True, exist_ok=True)
    os.symlink(secret, root_a / "link.txt")
    os.symlink(media_root / "orgs" / str(b.organization.pk) / "private", root_a / "other-org")
    assert _call(a, "files_read", path="link.txt").code == "path_refused"
    assert _call(a, "files_read", path="other-org/payroll.txt").code == "path_refused"
    assert _call(a, "files_write", path="other-org/evil.txt", text="x").code == "path_refused"
    assert _call(a, "files_write", path="link.txt", text="overwrite", overwrite=True).code == "path_refused"
    assert _call(a, "files_list", path="other-org").code == "path_refused"
    assert [e["name"] for e in _call(a, "files_list").result["entries"]] == []
    assert secret.read_text() == "host secret"
    assert not (media_root / "orgs" / str(b.organization.pk) / "private" / "evil.txt").exists()


def test_organizations_do_not_share_files(tenants):
    """Each organization sees only its own files at the same path."""
    a, b = tenants
    _call(a, "files_write", path="same.txt", text="A")
    assert _call(b, "files_read", path="same.txt").code == "not_found"


def test_write_compensation_removes_created_file(tenant_a):
    """Rolling back a group removes the file its call created."""
    ctx = InvocationContext(group="g")
    invoke_tool(organization=tenant_a.organization, actor=tenant_a.member, tool_name="files_write",
                arguments={"path": "draft.txt", "text": "x"}, context=ctx)
    compensate_group(organization=tenant_a.organization, group="g", actor=tenant_a.member)
    assert not OrgStorage(tenant_a.organization.pk).exists("draft.txt")
