"""HR onboarding from one request sentence: parse it (deterministically) and start the onboarding workflow.

``onboarding_request_parse`` reads a request such as "Onboard Maria Lopez as
QA engineer starting 1 March, reporting to Dana" into the inputs of the
shipped ``employee-onboarding`` workflow; ``onboarding_request_start``
starts that workflow with them. No language model is involved: the agents
app's Manager will produce the same inputs later and call the same start.

What is read:

* who and what: ``Onboard|Hire|Add|Welcome <first> <last…> as <role>``
  (or ``<name>, <role>``);
* the first day: ``starting|starts|start date|beginning|on|from <date>``, where
  a date is ``1 March``, ``March 1st``, ``1 Mar 2027``, ``2027-03-01``, ``today``
  or ``tomorrow``; without a year it is the next such day (today included) in
  the organization's time zone;
* the manager: ``reporting to|reports to|managed by|manager <name or email>``,
  matched to a member of the organization (full name, first name or email);
  a manager who is not a member can be given with an email address;
* optionally the salary (``salary of|with a salary of <text>``) and the new
  employee's email address (any other address in the text). Without one,
  the work address is made from the name and the organization's email
  domain (``maria.lopez@acme.example``).

Whatever is missing or unclear is refused, naming each field, before
anything is started.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import Membership, Organization, User
from accounts.services.audit import audit_record
from automation.models import WorkflowTemplate, WorkflowVersion
from automation.services import schedules_clock as clock
from automation.services.workflows import (
    StartedWorkflow,
    workflow_create,
    workflow_start,
    workflow_validate_definition,
    workflow_version_create,
)

WORKFLOW_SLUG = "employee-onboarding"
SHIPPED_NOTE = "shipped with Staffer"
MAX_TEXT = 1000

MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10,
    "nov": 11, "dec": 12,
}
_MONTH = r"(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day,?\s+)?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+(\d{4}))?"
DATE_FORMS = [
    ("iso", re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})\b")),
    ("day_month", re.compile(rf"^{_WEEKDAY}{_DAY}\s+(?:of\s+)?({_MONTH}){_YEAR}\b", re.IGNORECASE)),
    ("month_day", re.compile(rf"^{_WEEKDAY}({_MONTH})\s+{_DAY}{_YEAR}\b", re.IGNORECASE)),
    ("relative", re.compile(r"^(today|tomorrow)\b", re.IGNORECASE)),
]
_DATE_AHEAD = (r"(?=\d{4}-\d|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r"|" + _MONTH + r"\s+\d"
               r"|today\b|tomorrow\b|(?:mon|tues|wednes|thurs|fri|satur|sun)day)")
CUES: list[tuple[str, re.Pattern[str]]] = [
    ("start_date", re.compile(
        r"\b(?:who\s+)?(?:starting(?:\s+on)?|starts(?:\s+on)?|start(?:ing)?\s+date(?:\s+(?:of|is))?:?"
        r"|beginning(?:\s+on)?|first\s+day(?:\s+(?:is|on))?:?)\s+", re.IGNORECASE)),
    ("start_date", re.compile(r"\b(?:on|from)\s+" + _DATE_AHEAD, re.IGNORECASE)),
    ("manager", re.compile(
        r"\b(?:who\s+)?(?:reporting\s+to|reports\s+to|report\s+to|managed\s+by|with\s+(?:the\s+)?manager"
        r"|(?:whose\s+)?manager\s+is|manager:)\s+", re.IGNORECASE)),
    ("salary", re.compile(
        r"\b(?:(?:with|at)\s+an?\s+)?(?:(?:yearly|annual|starting)\s+)?salary(?:\s+(?:of|is))?:?\s+", re.IGNORECASE)),
    ("email", re.compile(r"\b(?:(?:with|and)\s+)?(?:(?:his|her|their|work)\s+)?e-?mail(?:\s+address)?(?:\s+is)?:?\s+",
                         re.IGNORECASE)),
]
HEAD = re.compile(
    r"^(?:please\s+)?(?:can\s+you\s+)?(?:onboard|hire|add|welcome)\s+(?:(?:a\s+)?new\s+(?:employee|hire|colleague):?\s+)?"
    r"(?P<rest>.+)$", re.IGNORECASE)
ROLE_SPLIT = re.compile(r"\s+as\s+(?:an?\s+|our\s+(?:new\s+)?|the\s+(?:new\s+)?|new\s+)?", re.IGNORECASE)
EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
NAME_WORD = re.compile(r"^[^\W\d_][\w'’.-]*$")
_TRIM = " \t,;.:!?()[]\"'"


class OnboardingRequestIncomplete(InvalidInput):
    """The request lacks something or is unclear; ``problems`` maps each field to what is wrong."""

    code = "onboarding_request_incomplete"

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = dict(problems)
        text = "; ".join(f"{name}: {message}" for name, message in self.problems.items())
        super().__init__(f"the onboarding request cannot be started: {text}", field=next(iter(self.problems)))


@dataclass(frozen=True)
class OnboardingRequest:
    """What the request says, resolved: the inputs of the onboarding workflow."""

    first_name: str
    last_name: str
    job_title: str
    start_date: date
    manager: str
    manager_email: str
    email: str
    manager_user: User | None = None
    salary: str = ""
    email_derived: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def inputs(self) -> dict[str, str]:
        values = {
            "first_name": self.first_name, "last_name": self.last_name, "job_title": self.job_title,
            "start_date": self.start_date.isoformat(), "email": self.email, "manager": self.manager,
            "manager_email": self.manager_email,
        }
        if self.salary:
            values["salary"] = self.salary
        return values


# --- pieces ----------------------------------------------------------------------------------------


def _clean(value: str) -> str:
    return " ".join(value.split()).strip(_TRIM)


def _fold(value: str) -> str:
    """Lowercase ASCII, for comparing names (``José`` matches ``jose``)."""
    return unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().casefold().strip()


def _clauses(text: str) -> tuple[str, dict[str, str]]:
    """The head (who and what) and each cue's text, cut at the next cue."""
    found: list[tuple[int, int, str]] = []
    for name, pattern in CUES:
        for match in pattern.finditer(text):
            if any(start <= match.start() < end for start, end, _ in found):
                continue
            found.append((match.start(), match.end(), name))
    found.sort()
    head_end = found[0][0] if found else len(text)
    clauses: dict[str, str] = {}
    for index, (_, end, name) in enumerate(found):
        stop = found[index + 1][0] if index + 1 < len(found) else len(text)
        value = re.sub(r"\s+(?:and|with)$", "", text[end:stop].strip(_TRIM + " "), flags=re.IGNORECASE)
        clauses.setdefault(name, _clean(value))
    return text[:head_end], clauses


def parse_date(value: str, *, today: date) -> date:
    """A start date from text (see the module docstring); InvalidInput naming ``start_date`` if unreadable."""
    value = _clean(value)
    for form, pattern in DATE_FORMS:
        match = pattern.match(value)
        if not match:
            continue
        if form == "relative":
            return today if match.group(1).lower() == "today" else today + timedelta(days=1)
        if form == "iso":
            year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3))
        elif form == "day_month":
            day, month, year = int(match.group(1)), MONTHS[match.group(2).lower().rstrip(".")], match.group(3)
        else:
            month, day, year = MONTHS[match.group(1).lower().rstrip(".")], int(match.group(2)), match.group(3)
        if year:
            try:
                found = date(int(year), month, day)
            except ValueError:
                raise InvalidInput(f"{value!r} is not a date", field="start_date") from None
            if found < today:
                raise InvalidInput(f"{found.isoformat()} has passed", field="start_date")
            return found
        for candidate_year in (today.year, today.year + 1, today.year + 2, today.year + 3, today.year + 4):
            try:
                found = date(candidate_year, month, day)
            except ValueError:
                continue
            if found >= today:
                return found
        raise InvalidInput(f"{value!r} is not a date", field="start_date")
    raise InvalidInput(f"{value!r} is not a date this service reads (say e.g. '1 March' or '2027-03-01')",
                       field="start_date")


def _split_name(value: str) -> tuple[str, str] | str:
    """``(first, last)`` or the problem with the name."""
    words = _clean(value).split()
    if len(words) < 2:
        return "give the new employee's first and last name"
    if len(words) > 6 or not all(NAME_WORD.match(w) for w in words):
        return f"{_clean(value)!r} does not read as a person's name"
    return words[0], " ".join(words[1:])


def _members(organization: Organization) -> list[User]:
    return [
        m.user for m in Membership.objects.for_org(organization).select_related("user").filter(user__is_active=True)
    ]


def resolve_manager(organization: Organization, value: str) -> tuple[str, str, User | None]:
    """``(name, email, member)`` of the manager named by ``value`` (a member's name or email, or ``Name <email>``)."""
    value = _clean(value)
    emails = EMAIL.findall(value)
    name_part = _clean(EMAIL.sub("", value).replace("<", " ").replace(">", " "))
    members = _members(organization)
    if emails:
        email = emails[0].lower()
        member = next((u for u in members if u.email.lower() == email), None)
        return (member.full_name or name_part or email) if member else (name_part or email), email, member
    wanted = _fold(name_part)
    if not wanted:
        raise InvalidInput("say who the new employee reports to", field="manager")
    tests = [
        lambda u: _fold(u.full_name) == wanted,
        lambda u: bool(u.full_name) and _fold(u.full_name.split()[0]) == wanted,
        lambda u: _fold(u.full_name).startswith(wanted + " "),
        lambda u: _fold(u.email.split("@")[0]) == wanted.replace(" ", "."),
        lambda u: re.split(r"[._-]", _fold(u.email.split("@")[0]))[0] == wanted,
    ]
    for test in tests:
        matched = [u for u in members if test(u)]
        if len(matched) == 1:
            user = matched[0]
            return user.full_name or name_part, user.email, user
        if len(matched) > 1:
            listed = ", ".join(sorted(u.email for u in matched)[:5])
            raise InvalidInput(f"{name_part!r} matches several members ({listed}): say the full name or the email",
                               field="manager")
    raise InvalidInput(f"no member of {organization.name} is called {name_part!r}: name a member, or give the "
                       "manager's email address", field="manager")


def work_email(organization: Organization, first_name: str, last_name: str, prefer_domain: str = "") -> str:
    """``first.last@<the organization's email domain>``; InvalidInput naming ``email`` when it has none."""
    from tools.policy import internal_domains

    domains = sorted(internal_domains(organization))
    if not domains:
        raise InvalidInput(f"give the new employee's email address ({organization.name} has no email domain to "
                           "make one from)", field="email")
    domain = prefer_domain if prefer_domain in domains else domains[0]

    def part(text: str) -> str:
        return re.sub(r"[^a-z0-9]", "", _fold(text))

    local = ".".join(p for p in (part(first_name), part(last_name)) if p)
    if not local:
        raise InvalidInput("give the new employee's email address (none can be made from the name)", field="email")
    return f"{local}@{domain}"


# --- the services -------------------------------------------------------------------------------------


def onboarding_request_parse(
    *, organization: Organization, text: str, now: datetime | None = None
) -> OnboardingRequest:
    """Read an onboarding request; OnboardingRequestIncomplete (400) names every field missing or unclear."""
    if not isinstance(text, str) or not text.strip():
        raise OnboardingRequestIncomplete({"text": "say who to onboard, e.g. 'Onboard Maria Lopez as QA engineer "
                                                   "starting 1 March, reporting to Dana'"})
    if len(text) > MAX_TEXT:
        raise OnboardingRequestIncomplete({"text": f"at most {MAX_TEXT} characters"})
    text = " ".join(text.split())
    now = now or timezone.now()
    today = now.astimezone(clock.zone(organization.timezone or "UTC")).date()
    problems: dict[str, str] = {}
    head, clauses = _clauses(text)

    # Addresses: the manager's is in the manager clause; any other is the new employee's.
    manager_text = clauses.get("manager", "")
    manager_emails = set(EMAIL.findall(manager_text))
    other_emails = [e for e in EMAIL.findall(text) if e not in manager_emails]
    head = _clean(EMAIL.sub(" ", head))

    first = last = role = ""
    match = HEAD.match(head)
    if match is None:
        problems["name"] = "start with who to onboard, e.g. 'Onboard Maria Lopez as QA engineer'"
    else:
        rest = match.group("rest")
        parts = ROLE_SPLIT.split(rest, maxsplit=1)
        if len(parts) == 1 and "," in rest:
            parts = rest.split(",", 1)
        name = _split_name(parts[0])
        if isinstance(name, str):
            problems["name"] = name
        else:
            first, last = name
        role = _clean(parts[1]) if len(parts) > 1 else ""
        if not role:
            problems["job_title"] = "say the role, e.g. '… as QA engineer'"
        elif len(role) > 200:
            problems["job_title"] = "at most 200 characters"

    start: date | None = None
    if "start_date" not in clauses or not clauses["start_date"]:
        problems["start_date"] = "say the first day, e.g. 'starting 1 March'"
    else:
        try:
            start = parse_date(clauses["start_date"], today=today)
        except InvalidInput as exc:
            problems["start_date"] = exc.message

    manager = manager_email = ""
    manager_user: User | None = None
    if not manager_text:
        problems["manager"] = "say who the new employee reports to, e.g. 'reporting to Dana'"
    else:
        try:
            manager, manager_email, manager_user = resolve_manager(organization, manager_text)
        except InvalidInput as exc:
            problems["manager"] = exc.message

    salary = clauses.get("salary", "")[:100]
    email, derived = "", False
    if other_emails:
        email = other_emails[0].lower()
    elif first and last:
        try:
            email = work_email(organization, first, last, prefer_domain=manager_email.rpartition("@")[2])
            derived = True
        except InvalidInput as exc:
            problems["email"] = exc.message
    if problems:
        raise OnboardingRequestIncomplete(problems)
    assert start is not None
    return OnboardingRequest(
        first_name=first, last_name=last, job_title=role, start_date=start, manager=manager,
        manager_email=manager_email, email=email, manager_user=manager_user, salary=salary, email_derived=derived,
    )


def _shipped_definition() -> dict[str, Any]:
    from automation.workflow_templates import builtin_templates

    for template in builtin_templates():
        if template["slug"] == WORKFLOW_SLUG:
            return template
    raise LookupError(f"the shipped workflow {WORKFLOW_SLUG!r} is missing")


def onboarding_workflow(*, organization: Organization, actor: User | None = None) -> WorkflowTemplate:
    """The organization's onboarding workflow, installed if missing and brought up to the shipped version.

    A workflow whose latest version is a shipped one (not edited by the
    organization) gets a new version when the shipped steps changed; one the
    organization edited is left alone.
    """
    shipped = _shipped_definition()
    with transaction.atomic():
        template = WorkflowTemplate.objects.for_org(organization).filter(slug=WORKFLOW_SLUG).first()
        if template is None:
            return workflow_create(organization=organization, actor=actor, name=shipped["name"], slug=WORKFLOW_SLUG,
                                   description=shipped["description"], definition=shipped["definition"],
                                   note=SHIPPED_NOTE)
        latest = WorkflowVersion.objects.for_org(organization).filter(
            template=template, number=template.latest_version
        ).first()
        wanted = workflow_validate_definition(shipped["definition"])
        if latest is not None and latest.note.startswith(SHIPPED_NOTE) and latest.definition != wanted:
            workflow_version_create(template=template, actor=actor, definition=shipped["definition"],
                                    note=f"{SHIPPED_NOTE} (updated)")
            template.refresh_from_db()
    return template


def onboarding_request_start(
    *, organization: Organization, actor: User, text: str, now: datetime | None = None
) -> tuple[StartedWorkflow, OnboardingRequest]:
    """Parse ``text`` and start the onboarding workflow for it, as ``actor``; audited with the request text."""
    request = onboarding_request_parse(organization=organization, text=text, now=now)
    template = onboarding_workflow(organization=organization, actor=actor)
    title = f"Onboard {request.full_name} ({request.job_title}, first day {request.start_date.isoformat()})"
    with transaction.atomic():
        started = workflow_start(template=template, actor=actor, inputs=request.inputs(), title=title[:300])
        audit_record(organization=organization, actor=actor, action="onboarding.requested", target=started.run,
                     target_label=title[:200],
                     after={"text": " ".join(text.split())[:MAX_TEXT], "inputs": request.inputs(),
                            "email_derived": request.email_derived, "task": started.run.task_id,
                            "run": started.run.pk})
    return started, request
