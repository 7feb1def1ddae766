"""The terminal chat: a request typed in, the roles' progress printed as it happens, the slash commands."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApprovalRequest, ApprovalStatus
from automation.models import Task
from tests.agents.loop_support import ONBOARD, demo_domains, inline_engine  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


def pending_id(org, kind: str) -> int:
    return ApprovalRequest.objects.for_org(org).filter(kind=kind, status=ApprovalStatus.PENDING).order_by("id") \
        .values_list("id", flat=True).first()


def script(org) -> Iterator[str]:
    """What the person types, reading the ids they see on screen."""
    yield ONBOARD + "\n"
    yield "/status\n"
    yield f"/approve {pending_id(org, 'plan')}\n"
    yield f"/approve {pending_id(org, 'task')}\n"
    root = Task.objects.for_org(org).filter(source="chat", parent__isnull=True).latest("pk")
    yield f"/task {root.pk}\n"
    yield "/nonsense\n"
    yield "/clear\n"
    yield "/exit\n"
    yield "never read\n"


def test_the_terminal_chat_shows_each_role_at_work_and_its_commands(tenant_a, inline_engine, settings, tmp_path):  # noqa: F811
    """Inline (no worker): the onboarding request is planned; /approve releases the plan and then the offer letter;
    the Manager, the Employees, the Supervisor and the tools print as they work, with the scripted label once;
    /status, /task, /clear and /exit answer."""
    settings.MEDIA_ROOT = tmp_path
    settings.LLM_DEPLOYMENTS = {}
    settings.LLM_TIERS = {}
    demo_domains(tenant_a.organization)
    out = StringIO()
    call_command("chat", "--org", tenant_a.slug, "--user", tenant_a.admin.email, "--inline", "--new",
                 stdin=script(tenant_a.organization), stdout=out)
    text = out.getvalue()
    for role in ("[assistant]", "[manager]", "[employee]", "[supervisor]", "[tool]", "[system]"):
        assert role in text, role
    assert text.count("Scripted model (offline)") == 1
    assert "Revision 2 of 3 requested" in text
    assert "Maria Lopez is onboarded" in text
    assert "waiting for the plan's approval" in text
    assert "plan v1 (approved, decompose)" in text
    assert "draft_offer_letter: Write Maria Lopez's offer letter (.docx) [#" in text
    assert "unknown command /nonsense" in text
    assert "(new thread #" in text
    assert text.rstrip().endswith("bye")
    assert "never read" not in text


def test_a_non_member_cannot_chat(tenant_a, tenant_b):
    """Only a member with agents:use may open the chat of an organization."""
    with pytest.raises(CommandError):
        call_command("chat", "--org", tenant_a.slug, "--user", tenant_b.member.email, stdin=iter([]),
                     stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("chat", "--org", tenant_a.slug, "--user", tenant_a.viewer.email, stdin=iter([]),
                     stdout=StringIO())
