"""http_request: the SSRF corpus (every vector refused, the canary never touched) and normal use."""

from __future__ import annotations

import socket
from urllib.parse import quote

import pytest

from tools.net import client as net_client
from tools.net.client import fetch
from tools.net.guard import TRUSTED_CONFIG, PublicAddressPolicy, address_refusal, parse_ipv4_loose
from tools.services.invocation import invoke_tool
from tools.services.settings import tool_setting_update
from tools.types import Outcome

from .support.servers import Canary, StubServer, slow

pytestmark = pytest.mark.django_db

PUBLIC_IP = "93.184.216.34"  # stands for "the internet": routed to the local stub by the patched connector

NAMES = {
    "public.example": [PUBLIC_IP],
    "also-public.example": [PUBLIC_IP],
    "rebind.example": ["127.0.0.1"],
    "private-a.example": ["10.0.0.5"],
    "private-b.example": ["172.20.1.1"],
    "private-c.example": ["192.168.0.10"],
    "mixed.example": [PUBLIC_IP, "127.0.0.1"],
    "mixed6.example": [PUBLIC_IP, "::1"],
    "v6-loopback.example": ["::1"],
    "v6-mapped.example": ["::ffff:127.0.0.1"],
    "v6-ula.example": ["fd00::1"],
    "v6-linklocal.example": ["fe80::1"],
    "metadata-alias.example": ["169.254.169.254"],
    "cgnat.example": ["100.64.0.7"],
    "zero.example": ["0.0.0.0"],
    "multicast.example": ["224.0.0.251"],
    "localtest.me": ["127.0.0.1"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "10.0.0.1.sslip.io": ["10.0.0.1"],
    "customer.attacker.example": ["169.254.170.2"],
}


@pytest.fixture
def net(monkeypatch):
    """Canaries on loopback, a 'public' stub, a resolver mapping test names, a connector routing PUBLIC_IP."""
    canary = Canary()
    try:
        canary6 = Canary(socket.AF_INET6, "::1")
    except OSError:  # no IPv6 loopback here
        canary6 = None
    lookups: list[str] = []

    def big(record):
        return 200, {"Content-Type": "text/plain"}, "x" * 2_000_000

    def chunked_big(record):
        chunk = b"y" * 65536
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(40)) + b"0\r\n\r\n"
        return 200, {"Content-Type": "text/plain", "Transfer-Encoding": "chunked"}, body

    def redirect(record):
        return 302, {"Location": record["query"]["to"][0]}, ""

    stub = StubServer({
        "/ok": lambda r: (200, {"Content-Type": "text/plain"}, "hello from the internet"),
        "/json": lambda r: (200, {}, {"seen": r["headers"].get("x-test", "")}),
        "/echo": lambda r: (200, {"Content-Type": "text/plain"}, r["body"]),
        "/redirect": redirect,
        "/big": big,
        "/chunked-big": chunked_big,
        "/slow": slow(3),
    })
    real_open = net_client.open_socket

    def resolve(host, port):
        lookups.append(host)
        if host in NAMES:
            return list(NAMES[host])
        from tools.net.guard import SSRFRefused

        raise SSRFRefused(f"{host} does not resolve")

    def open_socket(address, port, timeout):
        if address == PUBLIC_IP:
            return real_open("127.0.0.1", stub.port, timeout)
        return real_open(address, port, timeout)

    monkeypatch.setattr(net_client, "resolve", resolve)
    monkeypatch.setattr(net_client, "open_socket", open_socket)

    class Net:
        pass

    n = Net()
    n.canary, n.canary6, n.stub, n.lookups = canary, canary6, stub, lookups
    yield n
    stub.close()
    canary.close()
    if canary6:
        canary6.close()


def _allow_ports(tenant, *ports):
    tool_setting_update(organization=tenant.organization, actor=tenant.admin, tool_name="http_request",
                        config={"allowed_ports": [80, 443, 8080, *ports]})


def _get(tenant, url, **extra):
    return invoke_tool(organization=tenant.organization, actor=tenant.member, tool_name="http_request",
                       arguments={"url": url, **extra})


def ssrf_vectors(p: int, p6: int) -> list[str]:
    """At least 100 URLs that must never reach an internal address. ``p``/``p6``: canary ports."""
    loopback_v4 = [
        f"http://127.0.0.1:{p}/", f"http://127.0.0.1.:{p}/", f"http://127.1:{p}/", f"http://127.0.1:{p}/",
        f"http://2130706433:{p}/", f"http://0x7f000001:{p}/", f"http://0x7F.0x0.0x0.0x1:{p}/",
        f"http://0177.0.0.1:{p}/", f"http://0177.0000.0000.0001:{p}/", f"http://017700000001:{p}/",
        f"http://0x7f.1:{p}/", f"http://127.000.000.001:{p}/", f"http://0:{p}/", f"http://0.0.0.0:{p}/",
        f"http://0x0:{p}/", f"http://00:{p}/", f"http://127.255.255.254:{p}/", f"http://127.127.127.127:{p}/",
        f"http://0x7f.0.0.1:{p}/", f"http://0177.1:{p}/", f"http://LOCALHOST:{p}/", f"http://localhost:{p}/",
        f"http://localhost.:{p}/", f"http://app.localhost:{p}/", f"http://ip6-localhost:{p}/",
        f"https://127.0.0.1:{p}/", f"http://127.0.0.1:{p}/redirect",
        f"http://①②⑦.0.0.1:{p}/", f"http://１２７.０.０.１:{p}/",
    ]
    loopback_v6 = [
        f"http://[::1]:{p6}/", f"http://[0:0:0:0:0:0:0:1]:{p6}/", f"http://[::]:{p6}/",
        f"http://[0000::1]:{p6}/", f"http://[::ffff:127.0.0.1]:{p}/", f"http://[::ffff:7f00:1]:{p}/",
        f"http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/", f"http://[::127.0.0.1]:{p}/", f"http://[::7f00:1]:{p}/",
        f"http://[2002:7f00:1::]:{p}/", f"http://[64:ff9b::127.0.0.1]:{p}/", f"http://[64:ff9b::7f00:1]:{p}/",
        f"http://[::1%25lo]:{p6}/", f"http://[fe80::1%25eth0]:{p6}/", f"http://[::ffff:0:127.0.0.1]:{p}/",
    ]
    private_v4 = [
        "http://10.0.0.1/", "http://10.255.255.255/", "http://012.0.0.1/", "http://167772161/",
        "http://172.16.0.1/", "http://172.31.255.254/", "http://0xac.0x10.0.1/", "http://192.168.0.1/",
        "http://192.168.1.254:8080/", "http://3232235777/", "http://0xc0a80001/", "http://100.64.0.1/",
        "http://100.127.255.254/", "http://192.0.0.8/", "http://198.18.0.1/", "http://198.19.255.255/",
        "http://192.0.2.10/", "http://198.51.100.7/", "http://203.0.113.9/", "http://224.0.0.1/",
        "http://239.255.255.250/", "http://240.0.0.1/", "http://255.255.255.255/", "http://192.88.99.1/",
    ]
    metadata = [
        "http://169.254.169.254/latest/meta-data/", "http://169.254.169.254/computeMetadata/v1/",
        "http://2852039166/", "http://0xa9fea9fe/", "http://0251.0376.0251.0376/", "http://169.254.43518/",
        "http://169.254.170.2/v2/credentials", "http://100.100.100.200/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/", "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/", "http://metadata.google.internal/computeMetadata/v1/",
        "http://metadata/", "http://metadata.goog/", "http://instance-data/latest/",
        "http://instance-data.ec2.internal/", "http://kubernetes.default.svc/", "http://vault.service.consul.local/",
        "http://db.internal/", "http://printer.lan/",
    ]
    private_v6 = [
        "http://[fc00::1]/", "http://[fd12:3456:789a::1]/", "http://[fe80::1]/", "http://[fec0::1]/",
        "http://[ff02::1]/", "http://[ff05::1:3]/", "http://[2001:db8::1]/", "http://[100::1]/",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "http://[2002:a00:1::]/", "http://[2002:c0a8:101::]/",
        "http://[64:ff9b::a00:1]/", "http://[::ffff:10.0.0.1]/", "http://[::ffff:192.168.1.1]/",
    ]
    names = [
        f"http://rebind.example:{p}/", f"http://localtest.me:{p}/", f"http://127.0.0.1.nip.io:{p}/",
        "http://10.0.0.1.sslip.io/", "http://private-a.example/", "http://private-b.example/",
        "http://private-c.example/", f"http://mixed.example:{p}/", f"http://mixed6.example:{p6}/",
        f"http://v6-loopback.example:{p6}/", f"http://v6-mapped.example:{p}/", "http://v6-ula.example/",
        "http://v6-linklocal.example/", "http://metadata-alias.example/", "http://cgnat.example/",
        f"http://zero.example:{p}/", "http://multicast.example/", "http://customer.attacker.example/",
        "http://no-such-name.example/",
    ]
    schemes = [
        "file:///etc/passwd", "file://localhost/etc/passwd", "gopher://127.0.0.1:6379/_INFO",
        "ftp://127.0.0.1/", "dict://127.0.0.1:11211/stat", "ldap://127.0.0.1/", "sftp://127.0.0.1/",
        "tftp://127.0.0.1/x", "jar:http://127.0.0.1!/", "netdoc:///etc/passwd", "data:text/plain,hello",
        "javascript:alert(1)//", "ws://127.0.0.1/", "wss://example.com/", "//127.0.0.1/", "/etc/passwd",
        "http:/127.0.0.1/", "HTTP://127.0.0.1/",
    ]
    userinfo = [
        f"http://public.example@127.0.0.1:{p}/", f"http://user:pass@127.0.0.1:{p}/",
        "http://user@public.example/ok", f"http://127.0.0.1:{p}#@public.example/",
        f"http://127.0.0.1:{p}?@public.example/", f"http://public.example:80@127.0.0.1:{p}/",
        f"http://public.example%40127.0.0.1:{p}/", "http://127.0.0.1%2523@public.example/",
        f"http://public.example\\@127.0.0.1:{p}/", f"http://public.example\t.127.0.0.1:{p}/",
        f"http://127.0.0.1:{p}:80/", "http://%31%32%37.0.0.1/", f"http://[::1]@public.example:{p6}/",
        f"http://public.example @127.0.0.1:{p}/",
    ]
    redirects = [
        f"http://public.example/redirect?to={quote(target, safe='')}"
        for target in (
            f"http://127.0.0.1:{p}/", f"http://[::1]:{p6}/", "http://169.254.169.254/latest/meta-data/",
            f"http://2130706433:{p}/", f"http://rebind.example:{p}/", "http://10.0.0.1/", "file:///etc/passwd",
            f"http://localhost:{p}/", f"http://0:{p}/", f"http://[::ffff:127.0.0.1]:{p}/",
            f"http://public.example/redirect?to={quote(f'http://127.0.0.1:{p}/', safe='')}",
            f"//127.0.0.1:{p}/", "gopher://127.0.0.1:6379/_x", "http://metadata.google.internal/",
        )
    ]
    return loopback_v4 + loopback_v6 + private_v4 + metadata + private_v6 + names + schemes + userinfo + redirects


def test_ssrf_corpus_every_vector_refused_and_canary_untouched(tenant_a, fake_tools, net):
    """Every vector in the corpus is refused before connecting anywhere internal, and the canaries count zero."""
    p6 = net.canary6.port if net.canary6 else net.canary.port
    _allow_ports(tenant_a, net.canary.port, p6, 6379, 11211)
    vectors = ssrf_vectors(net.canary.port, p6)
    assert len(vectors) >= 100
    assert len(set(vectors)) == len(vectors)
    let_through = []
    for url in vectors:
        result = _get(tenant_a, url)
        if result.outcome != Outcome.REFUSED or result.code not in ("ssrf_refused", "invalid_arguments"):
            let_through.append((url, result.outcome, result.code, result.reason))
    assert let_through == []
    assert net.canary.connections == 0
    if net.canary6:
        assert net.canary6.connections == 0
    # the redirect vectors did reach the public stub (so their refusals were of the redirect target)
    assert sum(1 for r in net.stub.requests if r["path"] == "/redirect") >= 12


def test_public_request_works_and_is_recorded(tenant_a, net):
    """A request to a public address returns status, headers and text."""
    result = _get(tenant_a, "http://public.example/ok")
    assert result.ok, result.reason
    assert result.result["status"] == 200
    assert result.result["text"] == "hello from the internet"
    assert result.tool_call.arguments == {"url": "http://public.example/ok"}


def test_resolves_once_and_connects_to_the_checked_address(tenant_a, net):
    """The name is looked up once per hop; a second answer (DNS rebinding) is never asked for."""
    answers = iter([[PUBLIC_IP], ["127.0.0.1"]])
    net_client_resolve = net_client.resolve

    def rebinding(host, port):
        net.lookups.append(host)
        return next(answers)

    net_client.resolve = rebinding
    try:
        result = _get(tenant_a, "http://public.example/ok")
    finally:
        net_client.resolve = net_client_resolve
    assert result.ok
    assert net.lookups == ["public.example"]
    assert net.canary.connections == 0


def test_allowed_redirect_is_followed_and_rechecked(tenant_a, net):
    """A redirect to another public URL is followed (and recorded); the target is checked again."""
    target = quote("http://also-public.example/ok", safe="")
    result = _get(tenant_a, f"http://public.example/redirect?to={target}")
    assert result.ok
    assert result.result["url"] == "http://also-public.example/ok"
    assert result.result["redirects"] == [f"http://public.example/redirect?to={target}"]
    assert net.lookups == ["public.example", "also-public.example"]


def test_credentials_dropped_on_cross_origin_redirect(tenant_a, net):
    """An Authorization header is not carried to a different origin after a redirect."""
    target = quote("http://also-public.example/json", safe="")
    result = _get(tenant_a, f"http://public.example/redirect?to={target}",
                  headers={"Authorization": "Bearer abc", "X-Test": "kept"})
    assert result.ok
    final = net.stub.requests[-1]
    assert "authorization" not in final["headers"]
    assert final["headers"]["x-test"] == "kept"


def test_allow_list_narrows(tenant_a, net):
    """With an allow list, a public host not on it is refused."""
    tool_setting_update(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="http_request",
                        config={"allowed_hosts": ["*.partner.example", "also-public.example"]})
    refused = _get(tenant_a, "http://public.example/ok")
    assert refused.code == "ssrf_refused"
    assert "allow list" in refused.reason
    assert _get(tenant_a, "http://also-public.example/ok").ok


def test_oversized_responses_refused(tenant_a, net):
    """A body over the limit is refused, whether declared in Content-Length or streamed in chunks."""
    declared = _get(tenant_a, "http://public.example/big")
    assert declared.outcome == Outcome.FAILED
    assert declared.code == "response_too_large"
    tool_setting_update(organization=tenant_a.organization, actor=tenant_a.admin, tool_name="http_request",
                        config={"max_response_bytes": 100_000})
    streamed = _get(tenant_a, "http://public.example/chunked-big")
    assert streamed.code == "response_too_large"
    assert streamed.result is None


def test_slow_response_times_out(tenant_a, net):
    """A server slower than the timeout gives a timed-out call."""
    result = _get(tenant_a, "http://public.example/slow", timeout=0.5)
    assert result.outcome == Outcome.TIMED_OUT


def test_post_json(tenant_a, net):
    """A JSON body is sent with its content type."""
    result = _get(tenant_a, "http://public.example/echo", method="POST", json={"a": 1})
    assert result.ok
    assert result.result["text"] == '{"a": 1}'
    assert net.stub.requests[-1]["headers"]["content-type"] == "application/json"


def test_trusted_config_reaches_loopback_but_the_guard_does_not(net):
    """Operator-configured base URLs (integrations) may be local; the same URL from a model is refused."""
    url = f"{net.stub.base_url}/ok"
    assert fetch("GET", url, policy=TRUSTED_CONFIG).status == 200
    from tools.net.guard import SSRFRefused

    with pytest.raises(SSRFRefused):
        fetch("GET", url, policy=PublicAddressPolicy(allowed_ports=frozenset({net.stub.port})))


@pytest.mark.parametrize(("text", "expected"), [
    ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("127.1", "127.0.0.1"),
    ("10.1", "10.0.0.1"), ("192.168.257", "192.168.1.1"), ("0", "0.0.0.0"), ("1.2.3.4", "1.2.3.4"),
    ("0xc0.0xa8.0x1.0x1", "192.168.1.1"), ("256.1.1.1", None), ("1.2.3.4.5", None), ("example", None),
    ("08.1.1.1", None),
])
def test_loose_ipv4_parsing_matches_inet_aton(text, expected):
    """Odd IPv4 notations parse as the C library would; invalid ones are not addresses."""
    parsed = parse_ipv4_loose(text)
    assert (str(parsed) if parsed else None) == expected
    if expected is not None:
        assert socket.inet_ntoa(socket.inet_aton(text)) == expected


def test_public_addresses_pass():
    """Ordinary public addresses are not refused."""
    import ipaddress

    for raw in ("93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"):
        assert address_refusal(ipaddress.ip_address(raw)) == ""
