"""Inbound addresses: ``tasks+<org-slug>@<domain>`` and ``tasks+<org-slug>.<token>@<domain>`` (no database)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from email.utils import parseaddr

from automation.email_in import conf

_SLUG = re.compile(r"^[a-z0-9_](?:[-a-z0-9_]{0,58}[a-z0-9_])?$")
_TOKEN = re.compile(r"^[a-z0-9]{6,16}$")
ADDRESS_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
TOKEN_LENGTH = 10


@dataclass(frozen=True)
class AddressParts:
    slug: str
    token: str = ""  # empty: the organization's address


def organization_address(slug: str) -> str:
    return f"{conf.local_part()}+{slug}@{conf.domain()}"


def personal_address(slug: str, token: str) -> str:
    return f"{conf.local_part()}+{slug}.{token}@{conf.domain()}"


def new_token() -> str:
    return "".join(secrets.choice(ADDRESS_ALPHABET) for _ in range(TOKEN_LENGTH))


def bare_address(value: str) -> str:
    """``Name <a@b>`` or ``<a@b>`` → ``a@b`` (lower-cased); '' when there is no address."""
    address = parseaddr(value or "")[1].strip().lower()
    return address if "@" in address else ""


def is_our_domain(address: str) -> bool:
    return bare_address(address).rpartition("@")[2] == conf.domain()


def parse_address(address: str) -> AddressParts | None:
    """The organization slug (and personal token) an address names, or None if it is not an inbound address."""
    bare = bare_address(address)
    local, _, domain = bare.rpartition("@")
    if domain != conf.domain():
        return None
    prefix = f"{conf.local_part()}+"
    if not local.startswith(prefix):
        return None
    slug, _, token = local[len(prefix):].partition(".")
    if not _SLUG.match(slug) or (token and not _TOKEN.match(token)):
        return None
    return AddressParts(slug=slug, token=token)
