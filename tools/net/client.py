"""An HTTP client that connects to the address it checked.

SECURITY: each hop resolves the host once (``resolve``), lets the policy
check every resolved address, and opens the TCP connection to the checked
address itself (``open_socket``), sending the original host name in the Host
header and as TLS SNI (certificates are verified against the name). Redirects
are never followed by a library: each ``Location`` is parsed and checked like
a new URL, and credentials are dropped when the origin changes. Proxy
environment variables are ignored. Responses are read up to ``max_bytes``
within one overall deadline.
"""

from __future__ import annotations

import functools
import http.client
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin

from tools.errors import ToolFailed, ToolTimeout
from tools.net import guard
from tools.net.guard import AddressPolicy, ParsedURL, SSRFRefused, parse_url

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
HOP_HEADERS = frozenset(
    {"host", "connection", "content-length", "transfer-encoding", "te", "upgrade", "proxy-authorization",
     "proxy-connection", "keep-alive", "trailer"}
)
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})
DEFAULT_MAX_BYTES = 1024 * 1024
USER_AGENT = "Staffer-Tools/1.0"


class ResponseTooLarge(ToolFailed):
    code = "response_too_large"


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    url: str
    redirects: list[str] = field(default_factory=list)
    address: str = ""

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> object:
        import json

        return json.loads(self.body or b"null")


@functools.cache
def default_tls_context() -> ssl.SSLContext:
    """The system's CA bundle, loaded once per process (loading it costs about 100 ms)."""
    return ssl.create_default_context()


def resolve(host: str, port: int) -> list[str]:
    """Every address of ``host`` (tests replace this to map names to addresses)."""
    return guard.system_resolve(host, port)


def open_socket(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to exactly ``address`` (never a name)."""
    return socket.create_connection((address, port), timeout=timeout)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, parsed: ParsedURL, address: str, timeout: float) -> None:
        super().__init__(parsed.host, parsed.port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = open_socket(self._address, self.port, self.timeout)  # type: ignore[arg-type]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, parsed: ParsedURL, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(parsed.host, parsed.port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = open_socket(self._address, self.port, self.timeout)  # type: ignore[arg-type]
        try:
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def _clean_headers(headers: dict[str, str] | None) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise SSRFRefused("header names and values are strings")
        if any(ch in name + value for ch in "\r\n\x00") or not name.strip() or ":" in name:
            raise SSRFRefused(f"the header {name[:40]!r} holds a forbidden character")
        if name.lower() in HOP_HEADERS:
            continue
        cleaned[name] = value
    cleaned.setdefault("User-Agent", USER_AGENT)
    return cleaned


def fetch(
    method: str,
    url: str,
    *,
    policy: AddressPolicy,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = 5,
    ssl_context: ssl.SSLContext | None = None,
) -> Response:
    """Send one request (and follow up to ``max_redirects`` checked redirects) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    method = method.upper()
    send_headers = _clean_headers(headers)
    context = ssl_context or default_tls_context()
    redirects: list[str] = []
    current = url
    origin: tuple[str, str, int] | None = None
    while True:
        parsed = parse_url(current)
        policy.check_url(parsed)
        if origin is not None and parsed.origin != origin:
            send_headers = {k: v for k, v in send_headers.items() if k.lower() not in CREDENTIAL_HEADERS}
        origin = parsed.origin
        addresses = [str(parsed.literal)] if parsed.literal is not None else resolve(parsed.host, parsed.port)
        address = policy.check_addresses(parsed, addresses)
        response = _one_hop(method, parsed, address, send_headers, body, deadline, max_bytes, context)
        response.redirects = list(redirects)
        location = response.headers.get("location")
        if response.status not in REDIRECT_CODES or not location:
            return response
        if len(redirects) >= max_redirects:
            raise ToolFailed(f"more than {max_redirects} redirects", code="too_many_redirects")
        redirects.append(parsed.url)
        current = urljoin(parsed.url, location)
        if response.status == 303 or (response.status in (301, 302) and method not in ("GET", "HEAD")):
            method, body = "GET", None
            send_headers = {k: v for k, v in send_headers.items() if k.lower() != "content-type"}


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ToolTimeout("the request ran out of time")
    return left


def _one_hop(
    method: str,
    parsed: ParsedURL,
    address: str,
    headers: dict[str, str],
    body: bytes | None,
    deadline: float,
    max_bytes: int,
    context: ssl.SSLContext,
) -> Response:
    timeout = _left(deadline)
    if parsed.scheme == "https":
        connection: http.client.HTTPConnection = _PinnedHTTPSConnection(parsed, address, timeout, context)
    else:
        connection = _PinnedHTTPConnection(parsed, address, timeout)
    try:
        connection.request(method, parsed.target, body=body, headers=headers)
        raw = connection.getresponse()
        declared = raw.getheader("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise ResponseTooLarge(f"the response declares {declared} bytes, over the limit of {max_bytes}")
        chunks: list[bytes] = []
        size = 0
        while True:
            if connection.sock is not None:
                connection.sock.settimeout(_left(deadline))
            chunk = raw.read(min(65536, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(f"the response is over the limit of {max_bytes} bytes")
        response_headers: dict[str, str] = {}
        for name, value in raw.getheaders():
            key = name.lower()
            response_headers[key] = f"{response_headers[key]}, {value}" if key in response_headers else value
        return Response(status=raw.status, reason=raw.reason, headers=response_headers, body=b"".join(chunks),
                        url=parsed.url, address=address)
    except TimeoutError as exc:
        raise ToolTimeout("the request ran out of time") from exc
    except ssl.SSLError as exc:
        raise ToolFailed(f"TLS failed for {parsed.host}: {exc.reason or exc}", code="tls_error") from exc
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        raise ToolFailed(f"the request to {parsed.host} failed: {type(exc).__name__}", code="connection_error") \
            from exc
    finally:
        connection.close()
