"""HR onboarding, end to end, on a real Celery worker: "Onboard Maria Lopez as QA engineer starting 1 March,
reporting to Dana" through the API, a local SMTP sink (aiosmtpd) and a local BambooHR stub.

The worker runs with its environment pointed at the stand-ins (SMTP host and port, the BambooHR base URL, a
media folder this test reads too, short leases and retries); see ``onboarding_worker``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from accounts.models import ApprovalRequest, AuditEvent
from automation.models import Task, TaskEvent, TaskRun, WorkflowRun
from automation.services import reconciler
from config import heartbeat
from tests.e2e.support import (
    JUDGED_REQUEST,
    HoldingHris,
    HoldingSmtpSink,
    attachment_names,
    by_subject,
    calendar_parts,
    docx_text,
    name_people,
)
from tests.support.worker import Worker, purge_broker
from tests.tools.support.providers import BAMBOO_KEY
from tools.models import ToolCall
from tools.services.credentials import credential_create
from tools.services.sweep import tool_calls_sweep_stale
from tools.storage import OrgStorage

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

STEPS = ["offer_letter", "director_approval", "hris", "welcome_email", "first_day_welcome", "manager_one_on_one"]
LEASE_SECONDS = 4


@pytest.fixture(scope="module")
def onboarding_worker(request, django_db_setup, tmp_path_factory):
    """A real worker whose environment points at a local SMTP sink and BambooHR stub (and a media folder, short
    leases and retries). A session worker (``celery_worker``) already running would take the same messages
    without those addresses: it is stopped for this module and started again afterwards."""
    sink = HoldingSmtpSink().start()
    hris = HoldingHris()
    media = tmp_path_factory.mktemp("onboarding-media")
    environment = {
        "STAFFER_TEST_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(sink.port),
        "DEFAULT_FROM_EMAIL": "staffer@acme.test",
        "MEDIA_ROOT": str(media),
        "STAFFER_BAMBOOHR_BASE_URL": hris.base_url,
        "AUTOMATION_LEASE_SECONDS": str(LEASE_SECONDS),
        "AUTOMATION_RETRY_BASE_SECONDS": "0.2",
        "AUTOMATION_RETRY_CAP_SECONDS": "1",
    }
    session_worker = request.getfixturevalue("celery_worker") if heartbeat.live_workers() else None
    if session_worker is not None:
        session_worker.stop()
    worker = Worker("onboarding", concurrency=2)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        purge_broker()
        worker.start()
        try:
            yield SimpleNamespace(worker=worker, sink=sink, hris=hris, media=media)
        finally:
            worker.stop()
            sink.stop()
            hris.close()
    purge_broker()
    if session_worker is not None:
        session_worker.start()


@pytest.fixture
def world(onboarding_worker, tenant_a, settings):
    """Acme with named people (the manager is Dana), a BambooHR credential, and fresh stand-ins."""
    onboarding_worker.sink.reset()
    onboarding_worker.hris.reset()
    if onboarding_worker.worker.process is None or onboarding_worker.worker.process.poll() is not None:
        onboarding_worker.worker.start()
    settings.MEDIA_ROOT = onboarding_worker.media
    settings.AUTOMATION_RETRY_BASE_SECONDS = 0.2
    settings.AUTOMATION_RETRY_CAP_SECONDS = 1
    name_people(tenant_a)
    credential_create(organization=tenant_a.organization, actor=tenant_a.admin, provider="bamboohr",
                      secret={"api_key": BAMBOO_KEY, "company_domain": "acme"})
    return SimpleNamespace(tenant=tenant_a, org=tenant_a.organization, **vars(onboarding_worker))


def worker_log(world) -> str:
    try:
        return world.worker.log_path.read_text()[-3000:]
    except OSError:
        return ""


def wait_for(world, check: Callable[[], bool], what: str, timeout: float = 90, tick: Callable[[], None] | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if tick is not None:
            tick()
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}\n--- worker log ---\n{worker_log(world)}")


def steps_of(run: WorkflowRun) -> dict[str, Task]:
    prefix = f"{run.template.slug}:"
    return {t.step_key.removeprefix(prefix): t for t in Task.objects.for_org(run.organization).filter(parent=run.task)}


def status(run: WorkflowRun, key: str | None = None) -> str:
    if key is None:
        return Task.objects.for_org(run.organization).values_list("status", flat=True).get(pk=run.task_id)
    return steps_of(run)[key].status


def request_onboarding(world, client_for) -> WorkflowRun:
    response = client_for(world.tenant.member).post(f"/api/v1/orgs/{world.tenant.slug}/onboarding/",
                                                    {"text": JUDGED_REQUEST}, format="json")
    assert response.status_code == 201, response.content
    return WorkflowRun.objects.for_org(world.org).select_related("template").get(pk=response.json()["run"]["id"])


def director_decides(world, client_for, run: WorkflowRun, verb: str, reason: str) -> ApprovalRequest:
    wait_for(world, lambda: status(run, "director_approval") == "blocked", "the run to park for the Director")
    approval = ApprovalRequest.objects.for_org(world.org).get(
        kind="task", subject_id=str(steps_of(run)["director_approval"].pk))
    response = client_for(world.tenant.admin).post(
        f"/api/v1/orgs/{world.tenant.slug}/approvals/{approval.pk}/{verb}/", {"reason": reason}, format="json")
    assert response.status_code == 200, response.content
    return approval


def transitions(task: Task) -> list[tuple[str, object]]:
    return [(e.payload.get("to"), e.created_at) for e in
            TaskEvent.objects.for_org(task.organization).filter(task=task, type="status_changed").order_by("sequence")]


def test_onboarding_end_to_end(world, client_for):
    """The judged scenario: the offer letter .docx is written (it names Maria Lopez), the run parks for a Director,
    who approves through the API; then exactly one employee in the HRIS, exactly one welcome email (the letter
    attached), two calendar invitations (.ics); the workflow's task completes; every step's events are in order;
    an audit event exists for each side effect."""
    run = request_onboarding(world, client_for)
    wait_for(world, lambda: status(run, "director_approval") == "blocked", "the offer letter and the approval")
    letter = steps_of(run)["offer_letter"].result
    assert letter["path"].endswith("Offer letter.docx")
    stored = world.media / "orgs" / str(world.org.pk) / letter["path"]
    assert stored.is_file()
    text = docx_text(OrgStorage(world.org.pk).read(letter["path"]))
    assert "Maria Lopez" in text
    assert "QA engineer" in text
    assert status(run) == "blocked"
    assert world.hris.requests == []
    assert world.sink.envelopes == []

    approval = director_decides(world, client_for, run, "approve", "offer checked")
    assert letter["download_url"] in approval.reason
    wait_for(world, lambda: status(run) in ("completed", "failed"), "the workflow to finish")
    steps = steps_of(run)
    assert {k: t.status for k, t in steps.items()} == dict.fromkeys(STEPS, "completed"), {
        k: t.failure_reason for k, t in steps.items()}
    assert status(run) == "completed"

    assert len(world.hris.employees) == 1
    employee = next(iter(world.hris.employees.values()))
    assert (employee["firstName"], employee["lastName"], employee["jobTitle"]) == ("Maria", "Lopez", "QA engineer")
    creates = [r for r in world.hris.requests if r["method"] == "POST"]
    assert len(creates) == 1

    messages = world.sink.messages
    welcome = by_subject(messages, "Welcome aboard, Maria!")
    assert len(welcome) == 1
    assert set(world.sink.envelopes[0]["rcpt"]) == {"maria.lopez@acme.test", "manager@acme.test"}
    assert attachment_names(welcome[0]) == ["Offer letter.docx"]
    invitations = by_subject(messages, "Invitation: ")
    assert len(invitations) == 2
    assert len(messages) == 3
    summaries = set()
    for invitation in invitations:
        ics = calendar_parts(invitation)
        assert ics, "an invitation carries its .ics"
        assert "invite.ics" in attachment_names(invitation)
        assert "mailto:maria.lopez@acme.test" in ics[0]
        assert f"DTSTART;TZID=UTC:{run.inputs['start_date'].replace('-', '')}T" in ics[0]
        summaries.add(next(line for line in ics[0].split("\r\n") if line.startswith("SUMMARY:")))
    assert summaries == {"SUMMARY:Welcome\\, Maria Lopez: first day", "SUMMARY:1:1 Maria / Dana Whitfield"}

    # Every step visible, in order: each ran (in_progress) and completed, after the step it waits for.
    history = {key: transitions(task) for key, task in steps.items()}
    for key, changes in history.items():
        assert changes[-1][0] == "completed", key
        assert "in_progress" in [to for to, _ in changes], key
    assert [to for to, _ in history["director_approval"]].count("blocked") == 1

    def first_run(key):
        return next(at for to, at in history[key] if to == "in_progress")

    def done(key):
        return history[key][-1][1]

    for before, after in [("offer_letter", "director_approval"), ("director_approval", "hris"),
                          ("hris", "welcome_email"), ("welcome_email", "first_day_welcome"),
                          ("welcome_email", "manager_one_on_one")]:
        assert done(before) <= first_run(after), (before, after)
    finished = [e.payload["step"].removeprefix("employee-onboarding:") for e in TaskEvent.objects.for_org(
        world.org).filter(task_id=run.task_id, type="subtask_finished").order_by("sequence")]
    assert finished[:4] == STEPS[:4]
    assert sorted(finished[4:]) == sorted(STEPS[4:])

    # An audit event for each side effect (and for the request and the decision).
    audit = AuditEvent.objects.for_org(world.org)
    tools_done = sorted(audit.filter(action="tool.succeeded").values_list("after__tool", flat=True))
    assert tools_done == sorted(["documents_generate", "hris_create_employee", "email_send", "calendar_invite",
                                 "calendar_invite"])
    for action in ("onboarding.requested", "workflow.started", "approval.requested", "approval.approved"):
        assert audit.filter(action=action).exists(), action


def test_a_rejected_offer_stops_before_the_hris(world, client_for):
    """The Director rejects the offer: no HRIS call, no email, no invitation; the run fails naming the approval."""
    run = request_onboarding(world, client_for)
    director_decides(world, client_for, run, "reject", "salary band not agreed")
    wait_for(world, lambda: status(run) == "failed", "the workflow to fail")
    steps = steps_of(run)
    assert steps["offer_letter"].status == "completed"
    assert steps["director_approval"].status == "failed"
    assert "salary band not agreed" in steps["director_approval"].failure_reason
    assert {k: steps[k].status for k in STEPS[2:]} == dict.fromkeys(STEPS[2:], "skipped")
    time.sleep(1)  # anything wrongly released would have reached the stand-ins by now
    assert world.hris.requests == []
    assert world.sink.envelopes == []
    assert not ToolCall.objects.for_org(world.org).exclude(tool_name="documents_generate").exists()


def test_a_step_run_twice_sends_one_email(world, client_for):
    """The welcome email's attempt is given up while the mail server has the message but has not answered yet
    (its lease expired); the step runs again and finds the first call still running, then finished: it sends
    nothing more. The run completes with one welcome email and one employee."""
    world.sink.hold_next.set()
    run = request_onboarding(world, client_for)
    director_decides(world, client_for, run, "approve", "ok")
    wait_for(world, world.sink.holding.is_set, "the welcome email to reach the mail server")
    email_task = steps_of(run)["welcome_email"]
    report = reconciler.reconcile(now=timezone.now() + timedelta(seconds=LEASE_SECONDS + 60))
    assert report.leases_expired == 1
    wait_for(world, lambda: TaskRun.objects.for_org(world.org).filter(task=email_task, status="failed").exists(),
             "the second attempt to find the first call still running", tick=reconciler.reconcile)
    world.sink.release.set()
    wait_for(world, lambda: ToolCall.objects.for_org(world.org).filter(tool_name="email_send",
                                                                        outcome="succeeded").exists(),
             "the first call to finish once the mail server answers")
    wait_for(world, lambda: status(run) in ("completed", "failed"), "the workflow to finish", tick=reconciler.reconcile)
    steps = steps_of(run)
    assert {k: t.status for k, t in steps.items()} == dict.fromkeys(STEPS, "completed"), {
        k: t.failure_reason for k, t in steps.items()}
    assert len(by_subject(world.sink.messages, "Welcome aboard")) == 1
    assert len(world.hris.employees) == 1
    calls = ToolCall.objects.for_org(world.org).filter(tool_name="email_send")
    assert list(calls.values_list("outcome", flat=True)) == ["succeeded"]
    runs = list(TaskRun.objects.for_org(world.org).filter(task=email_task).order_by("attempt")
                .values_list("status", flat=True))
    assert runs[0] == "lost"
    assert runs[-1] == "completed"
    assert set(runs[1:-1]) == {"failed"}
    events = set(TaskEvent.objects.for_org(world.org).filter(task=email_task).values_list("type", flat=True))
    assert "lease_expired" in events


def test_a_worker_killed_during_the_hris_call_does_not_create_the_employee_twice(world, client_for):
    """SIGKILL the worker while BambooHR is adding the employee. A fresh worker runs the step again: the call's
    outcome is unknown (recorded as interrupted), so it is not repeated and the step fails saying so; nothing after
    it runs. A person's retry of the step through the API still creates no second employee."""
    world.hris.hold_next.set()
    run = request_onboarding(world, client_for)
    director_decides(world, client_for, run, "approve", "ok")
    wait_for(world, world.hris.holding.is_set, "BambooHR to receive the new employee")
    world.worker.kill()
    world.hris.release.set()
    assert len(world.hris.employees) == 1
    hris_task = steps_of(run)["hris"]
    call = ToolCall.objects.for_org(world.org).get(tool_name="hris_create_employee")
    assert call.outcome == "running"
    assert tool_calls_sweep_stale(now=timezone.now() + timedelta(minutes=10)) == 1
    call.refresh_from_db()
    assert (call.outcome, call.reason_code) == ("failed", "interrupted")
    assert AuditEvent.objects.for_org(world.org).filter(action="tool.interrupted", target_id=str(call.pk)).exists()

    purge_broker()
    world.worker.start()
    reconciler.reconcile(now=timezone.now() + timedelta(seconds=LEASE_SECONDS + 60))
    wait_for(world, lambda: status(run, "hris") == "failed", "the HRIS step to fail", tick=reconciler.reconcile)
    hris_task.refresh_from_db()
    assert "whether it took effect is unknown" in hris_task.failure_reason
    wait_for(world, lambda: status(run) == "failed", "the workflow to fail", tick=reconciler.reconcile)
    assert {k: status(run, k) for k in STEPS[3:]} == dict.fromkeys(STEPS[3:], "skipped")
    assert len(world.hris.employees) == 1
    assert world.sink.envelopes == []

    response = client_for(world.tenant.member).post(
        f"/api/v1/orgs/{world.tenant.slug}/tasks/{hris_task.pk}/retry/", {}, format="json")
    assert response.status_code == 200, response.content
    wait_for(world, lambda: status(run, "hris") == "failed", "the retried HRIS step to end", timeout=60,
             tick=reconciler.reconcile)
    assert len(world.hris.employees) == 1
    assert len([r for r in world.hris.requests if r["method"] == "POST"]) == 1
    assert ToolCall.objects.for_org(world.org).filter(tool_name="hris_create_employee").count() == 1
    assert world.sink.envelopes == []

