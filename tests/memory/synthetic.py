"""A seeded synthetic business for the memory quality gate (no model, no data files).

Several organizations with overlapping names (same people's names, same team
names, look-alike company names), people with emails, roles, teams and
managers, a CFO succession, role and email changes, preferences, projects and
utterances from templates, some of them carrying secrets.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

FIRST = ["Sarah", "John", "Priya", "Miguel", "Lena", "Omar", "Grace", "Tom", "Aiko", "Femi", "Ines", "Raj", "Zoe",
         "Paul", "Nadia", "Erik"]
LAST = ["Chen", "Park", "Patel", "Garcia", "Novak", "Haddad", "Kim", "Berg", "Sato", "Adeyemi", "Costa", "Rao",
        "Klein", "Martin", "Ivanova", "Larsen"]
TEAMS = {"Engineering": ["Engineer", "Senior Engineer", "Engineer"], "Finance": ["Accountant", "Controller"],
         "Sales": ["Account Executive", "Sales Rep", "Account Executive"]}
LEADS = {"Engineering": "VP Engineering", "Finance": "Head of Finance", "Sales": "Head of Sales"}
PREFERENCES = [
    "{org} prefers invoices as PDF attachments",
    "The weekly standup is on Mondays at 9:30",
    "{org} pays suppliers on net 45 terms",
    "Customer calls are recorded only with consent",
]
PROJECTS = ["Falcon", "Kestrel", "Osprey", "Heron"]

SECRET_TEMPLATES = [
    ("{name} said the company card is {card}", "card"),
    ("{name}: my password is {password}", "password"),
    ("{name} pasted the Stripe key {stripe}", "stripe"),
    ("{name} shared the AWS key {aws} in chat", "aws"),
    ("{name}'s SSN is {ssn}", "ssn"),
    ("Wire the deposit to {iban} says {name}", "iban"),
]
CONTACT_TEMPLATES = [
    "{name}'s direct line is {phone}",
    "{name} can be reached at {email}",
    "Ship {name}'s laptop to ZIP {zip}",
]


@dataclass
class Person:
    name: str
    email: str
    role: str
    team: str
    manager: str | None = None
    new_email: str | None = None
    new_role: str | None = None


@dataclass
class Business:
    slug: str
    name: str
    domain: str
    people: dict[str, Person] = field(default_factory=dict)
    cfo_before: str = ""
    cfo_now: str = ""
    cfo_change: datetime = datetime(2022, 7, 1, tzinfo=UTC)
    preferences: list[str] = field(default_factory=list)
    projects: dict[str, str] = field(default_factory=dict)
    utterances: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # the secret strings injected
    contacts: list[str] = field(default_factory=list)  # phone numbers, emails, ZIP codes injected


def _luhn_card(rng: random.Random) -> str:
    body = "4" + "".join(rng.choice("0123456789") for _ in range(14))
    for last in "0123456789":
        digits = body + last
        total = 0
        for index, char in enumerate(reversed(digits)):
            value = int(char) * (2 if index % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return " ".join(digits[i:i + 4] for i in range(0, 16, 4))
    raise AssertionError("unreachable")


def _iban(rng: random.Random) -> str:
    bank = "".join(rng.choice("0123456789") for _ in range(18))
    number = int(bank + "131400")  # DE00 moved to the end: D=13 E=14 00
    check = 98 - number % 97
    iban = f"DE{check:02d}{bank}"
    return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))


def generate(seed: int, organizations: int = 3) -> list[Business]:
    rng = random.Random(seed)
    names = [("northwind", "Northwind"), ("northwind-labs", "Northwind Labs"), ("acme-north", "Acme North")]
    businesses = []
    shared_people = [f"{f} {ln}" for f, ln in zip(rng.sample(FIRST, 6), rng.sample(LAST, 6), strict=True)]
    for slug, name in names[:organizations]:
        business = Business(slug=f"{slug}-{seed}", name=name, domain=f"{slug}.example")
        # Every organization has some of the same names (different people, different roles).
        pool = shared_people[:4]
        while len(pool) < 13:
            candidate = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            if candidate not in pool:
                pool.append(candidate)
        rng.shuffle(pool)
        cursor = 0
        for team, roles in TEAMS.items():
            lead = pool[cursor]
            cursor += 1
            business.people[lead] = Person(lead, _email(lead, business.domain), LEADS[team], team)
            for role in roles:
                person = pool[cursor]
                cursor += 1
                business.people[person] = Person(person, _email(person, business.domain), role, team, manager=lead)
        business.cfo_before, business.cfo_now = pool[cursor], pool[cursor + 1]
        for cfo in (business.cfo_before, business.cfo_now):
            business.people[cfo] = Person(cfo, _email(cfo, business.domain), "", "Finance")
        finance_lead = next(p for p in business.people.values() if p.role == LEADS["Finance"]).name
        business.people[business.cfo_now].manager = None
        business.people[finance_lead].manager = business.cfo_now
        movers = rng.sample([p for p in business.people.values() if p.manager], 2)
        movers[0].new_email = _email(movers[0].name, f"mail.{business.domain}")
        movers[1].new_role = "Staff " + movers[1].role
        business.preferences = [t.format(org=name) for t in rng.sample(PREFERENCES, 3)]
        business.projects = {p: rng.choice(list(business.people)) for p in rng.sample(PROJECTS, 2)}
        speakers = list(business.people)
        for template, kind in SECRET_TEMPLATES:
            secret = {
                "card": _luhn_card(rng),
                "password": f"Blue{rng.randint(1000, 9999)}Sky!",
                "stripe": "sk_live_" + "".join(rng.choice("abcdefghijkLMNOP0123456789") for _ in range(24)),
                "aws": "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
                "ssn": f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
                "iban": _iban(rng),
            }[kind]
            business.secrets.append(secret)
            business.utterances.append(template.format(name=rng.choice(speakers), **{kind: secret}))
        for template in CONTACT_TEMPLATES:
            person = business.people[rng.choice(speakers)]
            contact = {
                "{phone}": f"+1 415 555 {rng.randint(1000, 9999)}",
                "{email}": person.email,
                "{zip}": f"{rng.randint(10000, 99999)}",
            }
            for placeholder, value in contact.items():
                if placeholder in template:
                    business.contacts.append(value)
                    business.utterances.append(template.replace(placeholder, value).format(name=person.name))
        businesses.append(business)
    return businesses


def _email(name: str, domain: str) -> str:
    first, last = name.lower().split()
    return f"{first}.{last}@{domain}"
