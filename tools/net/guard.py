"""SSRF guard: which URLs and addresses a model- or user-supplied request may reach.

SECURITY: a URL is refused unless its scheme is http or https, it carries no
user-info, its host is a plain DNS name or IP literal (after IDNA
normalization, no percent-encoding, no backslash, no zone id), its port is
allowed, and every address the name resolves to is a public unicast address.
Odd IPv4 notations (decimal ``2130706433``, octal ``0177.0.0.1``, hex
``0x7f.1``, short ``127.1``) are parsed the way ``inet_aton`` parses them and
checked like any literal; IPv6 forms that embed an IPv4 address
(IPv4-mapped, IPv4-compatible, 6to4, NAT64, Teredo) are checked by the
embedded address or refused outright. The caller connects to the checked
address itself (resolve once, no second lookup), and re-checks every
redirect. Names that only exist inside a network (``localhost``,
``*.internal``, cloud metadata names) are refused before any lookup.

Operator-configured integration base URLs are trusted configuration and use
:data:`TRUSTED_CONFIG` instead (see ``tools.net.client``); anything a model or
a member supplies goes through :class:`PublicAddressPolicy`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tools.errors import ToolRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"http": 80, "https": 443}
ALLOWED_PORTS = frozenset({80, 443, 8080, 8443})
MAX_URL = 2048

BLOCKED_NAMES = frozenset(
    {
        "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "broadcasthost",
        "metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal",
        "metadata.azure.com", "metadata.packet.net", "kubernetes", "kubernetes.default",
    }
)
BLOCKED_SUFFIXES = (
    ".localhost", ".local", ".localdomain", ".internal", ".intranet", ".lan", ".home.arpa", ".corp", ".svc",
    ".cluster.local", ".in-addr.arpa", ".ip6.arpa", ".onion",
)

# Ranges refused in addition to everything ``ipaddress`` does not call global.
_EXTRA_V4 = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
)]
_EXTRA_V6 = [ipaddress.ip_network(n) for n in (
    "::/128", "::1/128", "::/96", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
    "2001::/32", "2001:db8::/32", "2001:10::/28", "2002::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
)]

_HOST_CHARS = re.compile(r"^[a-z0-9.-]+$")
_NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$")


class SSRFRefused(ToolRefused):
    code = "ssrf_refused"


# --- addresses ----------------------------------------------------------------------------


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    packed = address.packed
    if packed[:12] == b"\x00" * 12:  # IPv4-compatible (deprecated) ::a.b.c.d
        return ipaddress.IPv4Address(packed[12:])
    if address in ipaddress.ip_network("64:ff9b::/96"):  # NAT64
        return ipaddress.IPv4Address(packed[12:])
    return None


def address_refusal(address: IPAddress) -> str:
    """Why ``address`` may not be reached (empty when it is a public unicast address)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "an IPv6 zone id is not allowed"
        embedded = _embedded_v4(address)
        if embedded is not None:
            inner = address_refusal(embedded)
            return f"it embeds {embedded}: {inner}" if inner else f"it embeds the IPv4 address {embedded}"
        if address.teredo is not None:
            return "Teredo addresses are not allowed"
        networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = _EXTRA_V6
    else:
        networks = _EXTRA_V4
    for network in networks:
        if address in network:
            return f"{address} is in the non-public range {network}"
    if (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    ):
        return f"{address} is not a public address"
    return ""


def parse_ipv4_loose(host: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in any notation ``inet_aton`` accepts (decimal, octal, hex, 1–4 parts), else None."""
    if not _NUMERIC_HOST.match(host) or not host:
        return None
    parts = host.split(".")
    if len(parts) > 4 or any(p == "" for p in parts):
        return None
    values = []
    for part in parts:
        try:
            if part.startswith(("0x", "0X")):
                value = int(part[2:] or "0", 16)
            elif len(part) > 1 and part.startswith("0"):
                value = int(part, 8)
            else:
                value = int(part, 10)
        except ValueError:
            return None
        values.append(value)
    limits = {1: [2**32], 2: [256, 2**24], 3: [256, 256, 2**16], 4: [256, 256, 256, 256]}[len(values)]
    if any(v >= limit for v, limit in zip(values, limits, strict=True)):
        return None
    number = 0
    for value, limit in zip(values, limits, strict=True):
        number = number * limit + value
    return ipaddress.IPv4Address(number)


# --- URLs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedURL:
    scheme: str
    host: str  # ASCII, lowercase, no trailing dot; an IPv6 literal without brackets
    port: int
    target: str  # path and query, as sent on the request line
    literal: IPAddress | None

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if isinstance(self.literal, ipaddress.IPv6Address) else self.host
        default = DEFAULT_PORTS[self.scheme] == self.port
        return f"{self.scheme}://{host}{'' if default else f':{self.port}'}{self.target}"


def parse_url(url: str) -> ParsedURL:
    """Split and normalize ``url``; refuse anything but a plain http(s) URL."""
    if not isinstance(url, str) or not url:
        raise SSRFRefused("a URL is required")
    if len(url) > MAX_URL:
        raise SSRFRefused("the URL is too long")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url) or "\\" in url:
        raise SSRFRefused("the URL holds whitespace, control characters or a backslash")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SSRFRefused(f"the URL does not parse: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise SSRFRefused(f"only http and https URLs are allowed, not {scheme or 'a relative URL'!r}")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise SSRFRefused("URLs with user-info (user@host) are not allowed")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise SSRFRefused("the URL names no host")
    literal: IPAddress | None = None
    if parts.netloc.startswith("[") or ":" in raw_host:
        if "%" in raw_host:
            raise SSRFRefused("an IPv6 zone id is not allowed")
        try:
            literal = ipaddress.IPv6Address(raw_host)
        except ValueError as exc:
            raise SSRFRefused("the bracketed host is not an IPv6 address") from exc
        host = literal.compressed
    else:
        try:
            host = raw_host.encode("idna").decode("ascii") if not raw_host.isascii() else raw_host
        except UnicodeError as exc:
            raise SSRFRefused("the host name is not a valid international name") from exc
        host = host.lower().rstrip(".")
        if not host or not _HOST_CHARS.match(host) or ".." in host:
            raise SSRFRefused("the host holds characters a DNS name cannot")
        literal = parse_ipv4_loose(host)
        if literal is not None:
            host = str(literal)
    effective_port = port if port is not None else DEFAULT_PORTS[scheme]
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return ParsedURL(scheme=scheme, host=host, port=effective_port, target=target, literal=literal)


def _host_matches(host: str, pattern: str) -> bool:
    pattern = pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


# --- policies ------------------------------------------------------------------------------

def system_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA), via the system resolver."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise SSRFRefused(f"{host} does not resolve") from exc
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in seen:
            seen.append(address)
    return seen


@dataclass(frozen=True)
class PublicAddressPolicy:
    """The guard for model- and member-supplied URLs.

    ``allowed_hosts`` (the organization's allow list; ``*.example.com``
    covers subdomains) narrows it further when not empty.
    """

    allowed_hosts: tuple[str, ...] = ()
    allowed_ports: frozenset[int] = ALLOWED_PORTS
    trusted: bool = field(default=False, init=False)

    def check_url(self, parsed: ParsedURL) -> None:
        if parsed.port not in self.allowed_ports:
            raise SSRFRefused(f"port {parsed.port} is not allowed (allowed: {sorted(self.allowed_ports)})")
        if parsed.literal is not None:
            reason = address_refusal(parsed.literal)
            if reason:
                raise SSRFRefused(f"refused address: {reason}")
        else:
            if parsed.host in BLOCKED_NAMES or parsed.host.endswith(BLOCKED_SUFFIXES) or "." not in parsed.host:
                raise SSRFRefused(f"{parsed.host} is an internal name")
        if self.allowed_hosts and not any(_host_matches(parsed.host, p) for p in self.allowed_hosts):
            raise SSRFRefused(f"{parsed.host} is not on this organization's allow list")

    def check_addresses(self, parsed: ParsedURL, addresses: list[str]) -> str:
        """The address to connect to; refused if any resolved address is not public."""
        if not addresses:
            raise SSRFRefused(f"{parsed.host} has no address")
        for raw in addresses:
            try:
                address = ipaddress.ip_address(raw.split("%", 1)[0])
            except ValueError as exc:
                raise SSRFRefused(f"{parsed.host} resolved to something that is not an address") from exc
            reason = address_refusal(address)
            if reason:
                raise SSRFRefused(f"{parsed.host} resolves to a refused address: {reason}")
        return addresses[0]


@dataclass(frozen=True)
class TrustedConfigPolicy:
    """For base URLs an operator configured in settings (integrations): any address, http(s) only.

    Never use this for a URL that came from a model, a member or a webhook payload.
    """

    trusted: bool = field(default=True, init=False)

    def check_url(self, parsed: ParsedURL) -> None:
        return None

    def check_addresses(self, parsed: ParsedURL, addresses: list[str]) -> str:
        if not addresses:
            raise SSRFRefused(f"{parsed.host} has no address")
        return addresses[0]


AddressPolicy = PublicAddressPolicy | TrustedConfigPolicy
TRUSTED_CONFIG = TrustedConfigPolicy()
