"""HR onboarding from one sentence: the parser, the API, the shipped workflow run in-process against a local SMTP
sink and a BambooHR stub, the rejection path, and what the demo organization does without an HRIS credential."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from django.core import mail
from django.core.management import call_command

from accounts.models import ApprovalRequest, AuditEvent, Membership, Organization, User
from accounts.roles import Role
from automation.models import Task, TaskEvent, WorkflowRun, WorkflowTemplate, WorkflowVersion
from automation.onboarding import (
    OnboardingRequestIncomplete,
    onboarding_request_parse,
    onboarding_request_start,
    onboarding_workflow,
)
from automation.services.workflows import workflow_create
from tests.e2e.support import JUDGED_REQUEST, attachment_names, by_subject, calendar_parts, docx_text, name_people
from tests.factories import MembershipFactory, UserFactory
from tools.models import ToolCall
from tools.storage import OrgStorage

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
STEPS = ["offer_letter", "director_approval", "hris", "welcome_email", "first_day_welcome", "manager_one_on_one"]


@pytest.fixture
def people(tenant_a):
    name_people(tenant_a)
    return tenant_a


# --- the parser ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (JUDGED_REQUEST,
         {"first_name": "Maria", "last_name": "Lopez", "job_title": "QA engineer", "start_date": "2026-03-01",
          "email": "maria.lopez@acme.test", "manager": "Dana Whitfield", "manager_email": "manager@acme.test"}),
        ("Please hire José Núñez as an Engineering Manager, starts on March 3rd 2026, reports to manager@acme.test, "
         "salary of EUR 70,000.",
         {"first_name": "José", "last_name": "Núñez", "job_title": "Engineering Manager", "start_date": "2026-03-03",
          "email": "jose.nunez@acme.test", "manager": "Dana Whitfield", "manager_email": "manager@acme.test",
          "salary": "EUR 70,000"}),
        ("Onboard Li Wei, data analyst, on 2026-02-02 with manager Dana Whitfield, email li.wei@gmail.com",
         {"first_name": "Li", "last_name": "Wei", "job_title": "data analyst", "start_date": "2026-02-02",
          "email": "li.wei@gmail.com", "manager": "Dana Whitfield", "manager_email": "manager@acme.test"}),
        ("hire Ann van der Berg as Designer starting tomorrow, reporting to Pat Kim <pat@partner.example>",
         {"first_name": "Ann", "last_name": "van der Berg", "job_title": "Designer", "start_date": "2026-01-11",
          "email": "ann.vanderberg@acme.test", "manager": "Pat Kim", "manager_email": "pat@partner.example"}),
    ],
)
def test_a_request_sentence_becomes_the_workflow_inputs(people, text, expected):
    """Name, role, first day (the next such day when no year is said), manager (a member by first name, full name
    or email; or anyone with an email), optional salary; the work email is made from the name and the domain."""
    parsed = onboarding_request_parse(organization=people.organization, text=text, now=NOW)
    assert parsed.inputs() == expected


def test_a_day_without_a_year_is_the_next_one(people):
    """'1 March' said on 5 March means next year's; said on 1 March it means today."""
    later = onboarding_request_parse(organization=people.organization, text=JUDGED_REQUEST,
                                     now=datetime(2026, 3, 5, 9, tzinfo=UTC))
    assert later.start_date == date(2027, 3, 1)
    same_day = onboarding_request_parse(organization=people.organization, text=JUDGED_REQUEST,
                                        now=datetime(2026, 3, 1, 9, tzinfo=UTC))
    assert same_day.start_date == date(2026, 3, 1)


def test_an_incomplete_request_names_every_missing_field(people):
    """Nothing is guessed: each missing piece is named with an example of what to say."""
    with pytest.raises(OnboardingRequestIncomplete) as caught:
        onboarding_request_parse(organization=people.organization, text="Onboard Maria", now=NOW)
    assert set(caught.value.problems) == {"name", "job_title", "start_date", "manager"}
    assert "first and last name" in caught.value.problems["name"]
    assert "starting 1 March" in caught.value.problems["start_date"]


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("Onboard Maria Lopez as QA engineer starting 1 March, reporting to Zed", "manager",
         "no member of Acme Corp is called 'Zed'"),
        ("Onboard Maria Lopez as QA engineer starting 1 March 2025, reporting to Dana", "start_date", "has passed"),
        ("Onboard Maria Lopez as QA engineer starting 31 February 2027, reporting to Dana", "start_date",
         "is not a date"),
        ("Onboard Maria Lopez as QA engineer starting next week, reporting to Dana", "start_date",
         "not a date this service reads"),
        ("", "text", "say who to onboard"),
    ],
)
def test_unclear_requests_are_refused_naming_the_field(people, text, field, words):
    with pytest.raises(OnboardingRequestIncomplete) as caught:
        onboarding_request_parse(organization=people.organization, text=text, now=NOW)
    assert words in caught.value.problems[field]


def test_an_ambiguous_manager_is_refused_listing_the_matches(people):
    """Two members called Dana: the request must say which."""
    other = UserFactory(email="dana.cole@acme.test", full_name="Dana Cole")
    MembershipFactory(organization=people.organization, user=other, role=Role.MEMBER)
    with pytest.raises(OnboardingRequestIncomplete) as caught:
        onboarding_request_parse(organization=people.organization, text=JUDGED_REQUEST, now=NOW)
    assert "dana.cole@acme.test, manager@acme.test" in caught.value.problems["manager"]


def test_the_manager_is_only_looked_for_in_the_requests_organization(people, tenant_b):
    """A Dana of another organization does not count."""
    tenant_b.manager.full_name = "Dana Other"
    tenant_b.manager.save()
    people.manager.full_name = "Morgan Lead"
    people.manager.save()
    with pytest.raises(OnboardingRequestIncomplete) as caught:
        onboarding_request_parse(organization=people.organization, text=JUDGED_REQUEST, now=NOW)
    assert "no member of Acme Corp" in caught.value.problems["manager"]


# --- the API ---------------------------------------------------------------------------------------


def onboarding_url(tenant, *more):
    return "/".join([f"/api/v1/orgs/{tenant.slug}/onboarding", *more]) + "/"


def test_the_api_starts_the_workflow_from_a_sentence(people, client_for, engine):
    """POST /onboarding/ with the judged sentence: 201, the run of the shipped workflow with its six steps, the
    inputs read, and an audit event keeping the request's text."""
    response = client_for(people.member).post(onboarding_url(people), {"text": JUDGED_REQUEST}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["inputs"]["first_name"] == "Maria"
    assert body["manager_is_member"] is True
    assert body["email_derived"] is True
    assert [s["key"] for s in body["run"]["steps"]] == STEPS
    assert body["run"]["title"].startswith("Onboard Maria Lopez (QA engineer, first day ")
    event = AuditEvent.objects.for_org(people.organization).get(action="onboarding.requested")
    assert event.after["text"] == JUDGED_REQUEST
    assert event.after["run"] == body["run"]["id"]


def test_the_api_refuses_an_incomplete_request_with_each_field(people, client_for):
    """400 with a message per missing field; nothing is started."""
    response = client_for(people.member).post(onboarding_url(people), {"text": "Onboard Maria Lopez"},
                                              format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "onboarding_request_incomplete"
    assert set(body) >= {"job_title", "start_date", "manager"}
    assert "name" not in body
    assert not WorkflowRun.objects.for_org(people.organization).exists()
    assert client_for(people.member).post(onboarding_url(people), {}, format="json").status_code == 400


def test_preview_reads_the_sentence_and_starts_nothing(people, client_for):
    """A viewer may preview what a request would start; nothing is created."""
    response = client_for(people.viewer).post(onboarding_url(people, "preview"), {"text": JUDGED_REQUEST},
                                              format="json")
    assert response.status_code == 200, response.content
    assert response.json()["inputs"]["manager_email"] == "manager@acme.test"
    assert not Task.objects.for_org(people.organization).exists()


def test_a_viewer_cannot_start_an_onboarding(people, client_for):
    response = client_for(people.viewer).post(onboarding_url(people), {"text": JUDGED_REQUEST}, format="json")
    assert response.status_code == 403
    assert not Task.objects.for_org(people.organization).exists()


def test_another_organizations_slug_is_not_found_and_starts_nothing(people, tenant_b, client_for):
    """A member of A posting to B's onboarding: 404 (start and preview), nothing created in either."""
    name_people(tenant_b)
    for path in ((), ("preview",)):
        response = client_for(people.member).post(onboarding_url(tenant_b, *path), {"text": JUDGED_REQUEST},
                                                  format="json")
        assert response.status_code == 404
    assert not Task.objects.dangerously_unscoped().exists()
    assert not WorkflowTemplate.objects.for_org(tenant_b.organization).exists()


# --- the workflow, in-process against local stand-ins ---------------------------------------------


@pytest.fixture
def outside(people, settings, tmp_path):
    """Org storage in a temp folder, a real SMTP sink on loopback, a BambooHR stub with the org's credential."""
    from tests.tools.support import providers as p
    from tests.tools.support.smtp import SmtpSink
    from tools.services.credentials import credential_create

    settings.MEDIA_ROOT = tmp_path / "media"
    sink = SmtpSink().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = sink.port
    settings.EMAIL_USE_TLS = False
    settings.DEFAULT_FROM_EMAIL = "staffer@acme.test"
    stubs = p.Providers()
    settings.TOOLS_INTEGRATION_URLS = {"bamboohr": f"{stubs.base}/bamboo"}
    credential_create(organization=people.organization, actor=people.admin, provider="bamboohr",
                      secret={"api_key": p.BAMBOO_KEY, "company_domain": "acme"})
    yield SimpleNamespace(sink=sink, hris=stubs)
    sink.stop()
    stubs.close()


def steps_of(run: WorkflowRun) -> dict[str, Task]:
    prefix = f"{run.template.slug}:"
    return {t.step_key.removeprefix(prefix): t for t in Task.objects.for_org(run.organization).filter(parent=run.task)}


def approval_of(task: Task) -> ApprovalRequest:
    return ApprovalRequest.objects.for_org(task.organization).get(kind="task", subject_id=str(task.pk))


def decide(client, tenant, approval, verb, reason, capture):
    with capture(execute=True):
        return client.post(f"/api/v1/orgs/{tenant.slug}/approvals/{approval.pk}/{verb}/", {"reason": reason},
                           format="json")


def test_onboarding_runs_end_to_end_in_process(people, outside, client_for, engine,
                                               django_capture_on_commit_callbacks):
    """Offer letter .docx in the org's files → parked for a Director (the requester cannot decide) → approved
    through the API → one employee in the HRIS → one welcome email with the letter attached → two invitations."""
    response = client_for(people.member).post(onboarding_url(people), {"text": JUDGED_REQUEST}, format="json")
    run = WorkflowRun.objects.for_org(people.organization).get(pk=response.json()["run"]["id"])
    engine.drain()
    steps = steps_of(run)
    assert steps["offer_letter"].status == "completed"
    letter = steps["offer_letter"].result
    text = docx_text(OrgStorage(people.organization.pk).read(letter["path"]))
    assert "Dear Maria Lopez," in text
    assert "position of QA engineer at Acme Corp, reporting to Dana Whitfield" in text
    assert steps["director_approval"].status == "blocked"
    assert steps["hris"].status == "pending"
    approval = approval_of(steps["director_approval"])
    assert letter["download_url"] in approval.reason
    assert approval.arguments["offer_letter"] == letter["path"]
    assert approval.arguments["sha256"] == letter["sha256"]
    assert outside.hris.employees == {}
    assert outside.sink.envelopes == []

    assert decide(client_for(people.member), people, approval, "approve", "ok",
                  django_capture_on_commit_callbacks).status_code == 403

    assert decide(client_for(people.admin), people, approval, "approve", "offer checked",
                  django_capture_on_commit_callbacks).status_code == 200
    engine.drain()
    steps = steps_of(run)
    assert {k: t.status for k, t in steps.items()} == dict.fromkeys(STEPS, "completed")
    assert Task.objects.for_org(people.organization).get(pk=run.task_id).status == "completed"
    assert [e["firstName"] for e in outside.hris.employees.values()] == ["Maria"]
    employee = next(iter(outside.hris.employees.values()))
    assert employee["workEmail"] == "maria.lopez@acme.test"
    assert employee["hireDate"] == run.inputs["start_date"]
    messages = outside.sink.messages
    welcome = by_subject(messages, "Welcome aboard, Maria!")
    assert len(welcome) == 1
    assert attachment_names(welcome[0]) == ["Offer letter.docx"]
    assert f"Your employee number is {steps['hris'].result['employee_id']}." in str(welcome[0])
    invitations = by_subject(messages, "Invitation: ")
    assert len(invitations) == 2
    assert len(messages) == 3
    for invitation in invitations:
        ics = calendar_parts(invitation)[0]
        assert "METHOD:REQUEST" in ics
        assert "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:maria.lopez@acme.test" in ics
        assert "mailto:manager@acme.test" in ics
    finished = [e.payload["step"].split(":")[1] for e in TaskEvent.objects.for_org(people.organization).filter(
        task_id=run.task_id, type="subtask_finished").order_by("sequence")]
    assert finished[:4] == STEPS[:4]
    assert sorted(finished[4:]) == sorted(STEPS[4:])
    calls = ToolCall.objects.for_org(people.organization).filter(task_id__in=[str(t.pk) for t in steps.values()])
    assert sorted(calls.filter(outcome="succeeded").values_list("tool_name", flat=True)) == sorted(
        ["documents_generate", "hris_create_employee", "email_send", "calendar_invite", "calendar_invite"])
    actions = list(AuditEvent.objects.for_org(people.organization).values_list("action", flat=True))
    for action in ("onboarding.requested", "workflow.started", "approval.requested", "approval.approved"):
        assert action in actions
    assert actions.count("tool.succeeded") == 5


def test_a_rejected_offer_creates_no_employee_and_sends_nothing(people, outside, client_for, engine,
                                                                  django_capture_on_commit_callbacks):
    """The Director rejects: the approval step fails with the reason, the HRIS, email and calendar steps are
    skipped, the run fails naming the approval, and neither the HRIS nor the mail server hears anything."""
    started, _ = onboarding_request_start(organization=people.organization, actor=people.member,
                                          text=JUDGED_REQUEST)
    engine.drain()
    approval = approval_of(steps_of(started.run)["director_approval"])
    assert decide(client_for(people.admin), people, approval, "reject", "salary band not agreed",
                  django_capture_on_commit_callbacks).status_code == 200
    engine.drain()
    steps = steps_of(started.run)
    assert steps["director_approval"].status == "failed"
    assert "salary band not agreed" in steps["director_approval"].failure_reason
    assert {k: steps[k].status for k in STEPS[2:]} == dict.fromkeys(STEPS[2:], "skipped")
    parent = Task.objects.for_org(people.organization).get(pk=started.run.task_id)
    assert parent.status == "failed"
    assert "A Director approves the offer to Maria Lopez" in parent.failure_reason
    assert outside.hris.requests == []
    assert outside.sink.envelopes == []
    assert not ToolCall.objects.for_org(people.organization).exclude(tool_name="documents_generate").exists()


def test_a_manager_who_asked_cannot_approve_their_own_offer(people, outside, client_for, engine,
                                                            django_capture_on_commit_callbacks):
    """Four eyes: the requester may hold approvals:decide and still not approve the offer they asked for."""
    started, _ = onboarding_request_start(organization=people.organization, actor=people.owner,
                                          text=JUDGED_REQUEST)
    engine.drain()
    approval = approval_of(steps_of(started.run)["director_approval"])
    response = decide(client_for(people.owner), people, approval, "approve", "mine", django_capture_on_commit_callbacks)
    assert response.status_code == 403
    approval.refresh_from_db()
    assert approval.status == "pending"


# --- shipped template upkeep and the demo organization ----------------------------------------------


def test_an_older_shipped_onboarding_workflow_is_brought_up_to_date_but_an_edited_one_is_not(people, tenant_b):
    """A workflow whose latest version came with Staffer gets the shipped steps as a new version (once); one the
    organization edited keeps its steps."""
    old = {"inputs": [{"name": "employee"}], "steps": [{"key": "welcome", "title": "Welcome {{ employee }}"}]}
    workflow_create(organization=people.organization, actor=None, name="Employee onboarding",
                    slug="employee-onboarding", definition=old, note="shipped with Staffer")
    template = onboarding_workflow(organization=people.organization)
    assert template.latest_version == 2
    assert onboarding_workflow(organization=people.organization).latest_version == 2
    latest = WorkflowVersion.objects.for_org(people.organization).get(template=template, number=2)
    assert [s["key"] for s in latest.definition["steps"]] == STEPS
    workflow_create(organization=tenant_b.organization, actor=tenant_b.manager, name="Employee onboarding",
                    slug="employee-onboarding", definition=old, note="our own")
    assert onboarding_workflow(organization=tenant_b.organization).latest_version == 1


def test_the_demo_runs_until_the_hris_and_stops_there_with_a_recorded_reason(db, settings, tmp_path, engine,
                                                                               django_capture_on_commit_callbacks):
    settings.DEMO_HRIS = False
    """`seed_demo` sets the demo up for the judged request (current workflow; the demo Manager is Dana, so the
    organization keeps its five members). With no BambooHR credential the HRIS step is refused and recorded (tool
    call and audit), the email and invitations are skipped, nothing is sent, and the run fails naming the HRIS
    step."""
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())  # idempotent
    demo = Organization.objects.get(slug="demo")
    dana = User.objects.get(email="manager@demo.staffer.local")
    assert dana.full_name == "Dana Whitfield"
    assert Membership.objects.for_org(demo).get(user=dana).role == Role.MANAGER
    assert Membership.objects.for_org(demo).count() == 5
    assert AuditEvent.objects.for_org(demo).filter(action="demo.member_named").count() == 1
    requester = User.objects.get(email="member@demo.staffer.local")
    director = User.objects.get(email="admin@demo.staffer.local")
    started, parsed = onboarding_request_start(organization=demo, actor=requester, text=JUDGED_REQUEST)
    assert parsed.manager_email == "manager@demo.staffer.local"
    assert parsed.email == "maria.lopez@demo.staffer.local"
    engine.drain()
    from accounts.services.approvals import approval_decide

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(approval=approval_of(steps_of(started.run)["director_approval"]), actor=director,
                        approve=True, reason="fine")
    engine.drain()
    steps = steps_of(started.run)
    assert steps["offer_letter"].status == "completed"
    assert steps["hris"].status == "failed"
    assert "needs a bamboohr credential; an admin adds one first" in steps["hris"].failure_reason
    assert {k: steps[k].status for k in STEPS[3:]} == dict.fromkeys(STEPS[3:], "skipped")
    refused = ToolCall.objects.for_org(demo).get(tool_name="hris_create_employee")
    assert (refused.outcome, refused.reason_code) == ("refused", "not_configured")
    assert AuditEvent.objects.for_org(demo).filter(action="tool.refused", target_id=str(refused.pk)).exists()
    assert mail.outbox == []
    parent = Task.objects.for_org(demo).get(pk=started.run.task_id)
    assert parent.status == "failed"
    assert "Create Maria Lopez in the HRIS" in parent.failure_reason


@pytest.fixture
def demo_hris(settings, tmp_path):
    """The local HRIS stand-in as `runstack` serves it in development, on a free loopback port."""
    from tests.support.hris import Running

    settings.DEMO_HRIS = True
    running = Running(tmp_path / "hris.json", api_key=settings.DEMO_HRIS_API_KEY)
    settings.TOOLS_INTEGRATION_URLS = {"bamboohr": running.base}
    yield running.app
    running.close()


def test_the_demo_completes_the_judged_request_offline_against_the_local_hris(
    db, settings, tmp_path, engine, demo_hris, django_capture_on_commit_callbacks
):
    """With the stand-in on (development's default) `seed_demo` connects the demo to it once (an encrypted,
    audited credential), and the judged request runs to the end: the letter, the Director's approval, Maria
    created in the HRIS through the real BambooHR client, the welcome email, both invitations, the run
    completed, each side effect a ToolCall with its audit event."""
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())  # idempotent: one credential
    demo = Organization.objects.get(slug="demo")
    from tools.models import IntegrationCredential

    credential = IntegrationCredential.objects.for_org(demo).get(provider="bamboohr")
    assert settings.DEMO_HRIS_API_KEY.encode() not in bytes(credential.ciphertext)
    assert AuditEvent.objects.for_org(demo).filter(action="credential.created").count() == 1
    assert AuditEvent.objects.for_org(demo).filter(action="demo.hris_connected").count() == 1
    requester = User.objects.get(email="member@demo.staffer.local")
    director = User.objects.get(email="admin@demo.staffer.local")
    started, _ = onboarding_request_start(organization=demo, actor=requester, text=JUDGED_REQUEST)
    engine.drain()
    from accounts.services.approvals import approval_decide

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(approval=approval_of(steps_of(started.run)["director_approval"]), actor=director,
                        approve=True, reason="fine")
    engine.drain()
    steps = steps_of(started.run)
    assert {k: steps[k].status for k in STEPS} == dict.fromkeys(STEPS, "completed"), {
        k: steps[k].failure_reason for k in STEPS}
    [employee] = demo_hris.store.all(settings.DEMO_HRIS_COMPANY)
    assert (employee["firstName"], employee["lastName"], employee["status"]) == ("Maria", "Lopez", "Active")
    assert employee["jobTitle"] == "QA engineer"
    assert employee["workEmail"] == "maria.lopez@demo.staffer.local"
    assert steps["hris"].result["employee_id"] == employee["id"]
    subjects = sorted(m.subject for m in mail.outbox)
    assert subjects == ["Invitation: 1:1 Maria / Dana Whitfield", "Invitation: Welcome, Maria Lopez: first day",
                        "Welcome aboard, Maria!"]
    assert Task.objects.for_org(demo).get(pk=started.run.task_id).status == "completed"
    for call in ToolCall.objects.for_org(demo):
        assert call.outcome == "succeeded", (call.tool_name, call.reason)
        assert AuditEvent.objects.for_org(demo).filter(target_id=str(call.pk), action__startswith="tool.").exists()


def test_a_demo_hris_credential_an_admin_deleted_is_not_put_back(db, settings):
    """`./staffer run` seeds the demo at every start: the stand-in's credential comes once, not again after an
    admin deleted it."""
    settings.DEMO_HRIS = True
    call_command("seed_demo", stdout=io.StringIO())
    demo = Organization.objects.get(slug="demo")
    from tools.models import IntegrationCredential
    from tools.services.credentials import credential_delete

    credential_delete(credential=IntegrationCredential.objects.for_org(demo).get(provider="bamboohr"),
                      actor=User.objects.get(email="owner@demo.staffer.local"))
    call_command("seed_demo", stdout=io.StringIO())
    assert not IntegrationCredential.objects.for_org(demo).filter(provider="bamboohr").exists()
