"""Adversarial end-to-end tests: license-gate in a real Envoy, attacked over
HTTP/1.1 (raw sockets: exact bytes, nothing re-encoded by a client library)
and HTTP/2 (the h2 package, cleartext with prior knowledge, client-side
validation and normalisation turned off), with every `default`.

What counts is what the upstream ACTUALLY received: the upstream here is
`recording.RecordingUpstream`, which keeps the raw request line and header
bytes. Every request carries a unique `x-adversarial-id`; a test asks the
recorder for exactly the requests with its id, so "nothing reached the
upstream" is checked, not assumed.

Each exchange is reduced to one observed outcome, compared exactly:

- `Fwd(target)`: the upstream got it, with this request-target (bytes);
- `Deny(status, error)`: the filter answered, with this JSON `error` code;
- `Refused(status)`: Envoy itself answered (its codec or path normalisation:
  a 400, a 307 redirect for `%2F`, ...), or with `status=None` reset the
  stream or closed the connection without an answer.

Envoys: one per distinct configuration (`require`, `allow`, `deny` defaults
with the same rules and `strip_token`, plus one with a `path_separated_prefix`
rule), started on first use and shared by the module.
"""

from __future__ import annotations

import base64
import json
import socket
import uuid
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from conftest import ISSUER, claims, key, mint, plugin_config
from gateway import Envoy
from recording import MARK, Recorded, RecordingUpstream

# ---------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------

FORWARD_HEADERS = {"x-license-tenant": "tenant", "x-license-plan": "plan", "x-license-id": "jti"}

RULES = [
    {"match": {"host": "internal.example.com"}, "license": "deny"},
    {"match": {"host": "*.internal.example.com"}, "license": "deny"},
    {"match": {"prefix": "/healthz"}, "license": "none"},
    {"match": {"prefix": "/api/reports", "methods": ["GET"]}, "require": {"all": ["reports"]}},
    {"match": {"prefix": "/api/admin"}, "license": "deny"},
    {"match": {"prefix": "/admin"}, "require": {"any": ["sso", "audit"]}},
    {"match": {"prefix": "/internal"}, "license": "deny"},
    {"match": {"prefix": "/api/"}},
]

DEFAULTS = ("require", "allow", "deny")


def gate_config(default: str) -> dict:
    return plugin_config(default=default, rules=RULES,
                         forward={"headers": FORWARD_HEADERS, "strip_token": True})


def separated_config() -> dict:
    return plugin_config(default="deny", rules=[
        {"match": {"path_separated_prefix": "/healthz"}, "license": "none"},
        {"match": {"prefix": "/api/"}},
    ], forward={"headers": FORWARD_HEADERS, "strip_token": True})


CONFIGS = {
    "require": lambda: gate_config("require"),
    "allow": lambda: gate_config("allow"),
    "deny": lambda: gate_config("deny"),
    "separated": separated_config,
}

HOST = b"gateway.example.com"


class Gateways:
    """Starts each configuration's Envoy on first use; a configuration Envoy
    refuses fails every test that needs it at once, without a retry."""

    def __init__(self, upstream: RecordingUpstream, tmp_path_factory):
        self.upstream = upstream
        self.tmp = tmp_path_factory
        self.running: dict[str, Envoy] = {}
        self.failed: dict[str, str] = {}

    def get(self, name: str) -> Envoy:
        if name in self.failed:
            pytest.fail(f"Envoy with the {name!r} configuration did not start:\n{self.failed[name]}")
        if name not in self.running:
            envoy = Envoy(CONFIGS[name](), self.upstream.port, concurrency=2,
                          workdir=self.tmp.mktemp(f"envoy-{name}"))
            try:
                envoy.start()
            except (RuntimeError, TimeoutError) as e:
                self.failed[name] = str(e)[-3000:]
                pytest.fail(f"Envoy with the {name!r} configuration did not start:\n{self.failed[name]}")
            self.running[name] = envoy
        return self.running[name]

    def close(self) -> None:
        for envoy in self.running.values():
            envoy.stop()


@pytest.fixture(scope="module")
def recorder():
    with RecordingUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def gateways(recorder, tmp_path_factory):
    pool = Gateways(recorder, tmp_path_factory)
    yield pool
    pool.close()


# ---------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fwd:
    """Reached the upstream with this request-target."""
    target: bytes


@dataclass(frozen=True)
class Deny:
    """The filter answered with this status and JSON `error`."""
    status: int
    error: str


@dataclass(frozen=True)
class Refused:
    """Envoy answered by itself (`status`), or reset / closed (`None`)."""
    status: int | None = None


MISSING = Deny(401, "missing")
MALFORMED = Deny(401, "malformed")
FEATURE = Deny(403, "feature_missing")
DENIED = Deny(403, "route_denied")
INVALID = Deny(400, "invalid_request")
RESET = Refused(None)


def not_forwarded(outcome) -> bool:
    """Envoy refused it (a 4xx of its own, a reset), or the filter said 400."""
    if isinstance(outcome, Refused):
        return outcome.status is None or 400 <= outcome.status < 500
    return outcome == INVALID


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n.lower() == name]


@dataclass
class Exchange:
    outcome: object
    record: Recorded | None
    response: Response | None


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------

Headers = list[tuple[bytes, bytes]]


def _b(s: bytes | str) -> bytes:
    return s if isinstance(s, bytes) else s.encode()


def h1_send(port: int, method: bytes, target: bytes, host: bytes | None, headers: Headers) -> Response | None:
    """One request on a fresh connection, bytes exactly as given; `None` when
    Envoy closes or resets without answering."""
    lines = [b"%s %s HTTP/1.1" % (method, target)]
    if host is not None:
        lines.append(b"host: " + host)
    lines += [n + b": " + v for n, v in headers]
    lines.append(b"connection: close")
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    return None
                data += chunk
            head, body = data.split(b"\r\n\r\n", 1)
            status_line, *header_lines = head.split(b"\r\n")
            parsed = []
            for line in header_lines:
                name, _, value = line.partition(b":")
                parsed.append((name.strip().lower(), value.strip()))
            response = Response(int(status_line.split()[1]), parsed, body)
            # Read the body by its length rather than to the end: Envoy waits
            # a second for the client to close after a local reply.
            length = 0 if method == b"HEAD" else int((response.header(b"content-length") or [b"0"])[0])
            while len(response.body) < length:
                chunk = s.recv(65536)
                if not chunk:
                    break
                response.body += chunk
        except (ConnectionResetError, BrokenPipeError):
            return None
    return response


def h2_send(port: int, method: bytes, target: bytes, host: bytes | None, headers: Headers) -> Response | None:
    """One HTTP/2 request (h2c, prior knowledge) on a fresh connection; the
    header block is sent as given: names, order, case and bytes."""
    config = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                       validate_outbound_headers=False, normalize_outbound_headers=False,
                                       validate_inbound_headers=False)
    conn = h2.connection.H2Connection(config=config)
    block = [(b":method", method), (b":scheme", b"http")]
    if host is not None:
        block.append((b":authority", host))
    block.append((b":path", target))
    # Pseudo-headers a case adds go with the others, before regular headers.
    block += [h for h in headers if h[0].startswith(b":")] + [h for h in headers if not h[0].startswith(b":")]
    status, response_headers, body = None, [], b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, block, end_stream=True)
        try:
            s.sendall(conn.data_to_send())
            while data := s.recv(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        response_headers = [(n.lower(), v) for n, v in event.headers]
                        status = int(dict(response_headers)[b":status"])
                    elif isinstance(event, h2.events.DataReceived):
                        body += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded) and status is not None:
                        return Response(status, response_headers, body)
                    elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                        return None
                s.sendall(conn.data_to_send())
        except (ConnectionResetError, BrokenPipeError, h2.exceptions.ProtocolError):
            return None
    return None


def exchange(gw: Envoy, recorder: RecordingUpstream, proto: str, target: bytes | str,
             headers: list | tuple = (), host: bytes | str | None = HOST, method: bytes = b"GET") -> Exchange:
    """Sends one request and reduces it to its outcome, checking that the
    upstream saw it at most once and that its answer is the one relayed."""
    mark = uuid.uuid4().hex
    block = [(_b(n), _b(v)) for n, v in headers] + [(MARK, mark.encode())]
    send = h1_send if proto == "h1" else h2_send
    response = send(gw.listen_port, method, _b(target), None if host is None else _b(host), block)
    records = recorder.marked(mark)
    assert len(records) <= 1, f"the upstream got the request {len(records)} times"
    relayed = response.header(b"x-recorded") if response is not None else []
    if records or relayed:
        # The upstream's answer names its record: the request arrived even if
        # it lost its mark on the way.
        record = recorder.get(int(relayed[0])) if relayed else records[0]
        assert records in ([], [record]), "the upstream answered for another request"
        assert response is not None and response.status == 200, response
        return Exchange(Fwd(record.target), record, response)
    if response is None:
        return Exchange(RESET, None, None)
    if response.header(b"content-type") == [b"application/json"] and method != b"HEAD":
        body = json.loads(response.body)
        assert response.header(b"cache-control") == [b"no-store"]
        return Exchange(Deny(response.status, body["error"]), None, response)
    return Exchange(Refused(response.status), None, response)


PROTOS = ("h1", "h2")

# ---------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_raw(header: bytes, payload: bytes) -> str:
    """An RS256 compact JWS over exactly these header and payload bytes (what
    PyJWT cannot produce: duplicate members, hand-written JSON)."""
    private = serialization.load_pem_private_key(key("rsa.key.pem").encode(), password=None)
    signing_input = f"{b64url(header)}.{b64url(payload)}"
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def json_members(**extra) -> str:
    """The claims object's members as JSON text, without the braces."""
    return json.dumps(claims(**extra), separators=(",", ":"))[1:-1]


def bearer(token: str) -> tuple[str, str]:
    return ("authorization", f"Bearer {token}")


TOKENS = {
    None: lambda: None,
    "basic": lambda: mint(),
    "pro": lambda: mint(plan="pro"),
    "enterprise": lambda: mint(plan="enterprise"),
}


def auth_headers(kind: str | None) -> list:
    token = TOKENS[kind]()
    return [] if token is None else [bearer(token)]


def per_default(outcome) -> dict:
    return {d: outcome for d in DEFAULTS}


def raw_request(record: Recorded) -> bytes:
    return b"\r\n".join([record.request_line, *record.header_lines])


def cookie_pairs(record: Recorded) -> list[bytes]:
    """Every cookie pair the upstream got, in order, each exactly as it
    travelled (only the separators `;` and the spaces around them dropped)."""
    pairs = []
    for value in record.values(b"cookie"):
        pairs += [p.strip(b" \t") for p in value.split(b";")]
    return pairs


# ---------------------------------------------------------------------------
# 1 and encodings: routing on the path part, over every default
# ---------------------------------------------------------------------------

# name, target, token, {default: outcome} (an outcome for all), protocols
# (None: both). `Fwd(None)` stands for "forwarded, target exactly as sent".
SAME = Fwd(None)
ROUTING = [
    ("open route", "/healthz", None, SAME, None),
    ("open route, query", "/healthz?x=1", None, SAME, None),
    ("plain prefix keeps string meaning", "/healthzadmin/secret", None, SAME, None),
    ("licensed, no token", "/api/data", None, MISSING, None),
    ("licensed, token", "/api/data", "basic", SAME, None),
    ("feature route, lacking", "/api/reports/1", "basic", FEATURE, None),
    ("feature route, granted", "/api/reports/1", "pro", SAME, None),
    ("deny rule, no token", "/api/admin", None, DENIED, None),
    ("deny rule, token", "/api/admin/users", "enterprise", DENIED, None),
    ("deny rule /internal", "/internal/x", "enterprise", DENIED, None),
    ("no rule, no token", "/other", None, {"require": MISSING, "allow": SAME, "deny": DENIED}, None),
    ("no rule, token", "/other", "pro", {"require": SAME, "allow": SAME, "deny": DENIED}, None),
    ("case: /INTERNAL", "/INTERNAL", None, {"require": MISSING, "allow": SAME, "deny": DENIED}, None),
    ("case: /Api/Admin", "/Api/Admin", None, {"require": MISSING, "allow": SAME, "deny": DENIED}, None),
    # Encodings: Envoy's path normalisation (gateway.yaml) runs before the filter.
    ("%61 unreserved escape", "/%61pi/admin", None, DENIED, None),
    ("%2F escaped slash", "/api%2Fadmin", None, Refused(307), None),
    ("%2f lower-case escaped slash", "/api%2fadmin", None, Refused(307), None),
    ("dot-dot", "/api/../internal", None, DENIED, None),
    ("dot-dot from an open route", "/healthz/../api/admin", None, DENIED, None),
    ("escaped dot-dot", "/api/x/%2e%2e/admin", None, DENIED, None),
    ("escaped dot-dot, upper case", "/api/x/%2E%2E/admin", None, DENIED, None),
    ("dot-dot and escaped slash", "/healthz/..%2Fapi/admin", None, Refused(307), None),
    ("single dot", "/api/./admin", None, DENIED, None),
    ("double slash", "//internal", None, DENIED, None),
    ("double slashes inside", "//api//admin", None, DENIED, None),
    ("backslash", "/api\\admin", None, DENIED, None),
    ("semicolon parameter", "/api/admin;x=1", None, DENIED, None),
    ("escaped question mark", "/api/admin%3Fx", None, DENIED, None),
    ("NUL escape", "/api/admin%00", None, Refused(400), None),
    ("fragment", "/api/admin#x", None, Refused(400), None),
    ("query on a deny rule", "/api/admin?x=1", None, DENIED, None),
    ("escaped 0xff in the query", "/api/admin?x=%ff", None, DENIED, None),
    # Contract 1: the path part decides whatever bytes the query holds.
    # HTTP/1.1: Envoy's codec refuses a raw byte >= 0x80 in the request-target.
    ("raw 0xff in the query, h1", b"/api/admin?x=\xff", None, Refused(400), ("h1",)),
    ("raw 0xff in the query: feature route", b"/api/reports?x=\xff", "basic", FEATURE, ("h2",)),
    ("raw 0xff in the query: feature granted", b"/api/reports?x=\xff", "pro", SAME, ("h2",)),
    ("raw 0xff in the query: deny rule", b"/api/admin?x=\xff", None, DENIED, ("h2",)),
    ("raw 0xff in the query: /internal", b"/internal?\xc3\x28", "enterprise", DENIED, ("h2",)),
    ("raw UTF-8 in the query: deny rule", "/api/admin?x=é".encode(), None, DENIED, ("h2",)),
    ("raw 0xff in the query: licensed, no token", b"/api/data?x=\xff", None, MISSING, ("h2",)),
    ("raw 0xff in the query: licensed, token", b"/api/data?x=\xff&y=%ff", "basic", SAME, ("h2",)),
    ("raw 0xff in the query: open route", b"/healthz?x=\xff", None, SAME, ("h2",)),
    ("raw 0xff in the query: no rule", b"/other?x=\xfe\xff", None,
     {"require": MISSING, "allow": SAME, "deny": DENIED}, ("h2",)),
]


def routing_cases():
    for name, target, token, outcomes, protos in ROUTING:
        outcomes = outcomes if isinstance(outcomes, dict) else per_default(outcomes)
        for default in DEFAULTS:
            for proto in protos or PROTOS:
                expected = outcomes[default]
                if expected == SAME:
                    expected = Fwd(_b(target))
                yield pytest.param(default, proto, _b(target), token, expected, id=f"{default}-{proto}-{name}")


@pytest.mark.parametrize("default,proto,target,token,expected", list(routing_cases()))
def test_routing(gateways, recorder, default, proto, target, token, expected):
    result = exchange(gateways.get(default), recorder, proto, target, auth_headers(token))
    assert result.outcome == expected


@pytest.mark.parametrize("proto", PROTOS)
def test_head_is_held_to_a_get_rule(gateways, recorder, proto):
    """A rule for GET also holds HEAD: frameworks run the GET handler for it,
    so a license lacking `reports` must not reach it by asking for HEAD (the
    answer to HEAD has no body: its status and content type say it all)."""
    get = exchange(gateways.get("require"), recorder, proto, "/api/reports", auth_headers("basic"))
    assert get.outcome == FEATURE
    head = exchange(gateways.get("require"), recorder, proto, "/api/reports", auth_headers("basic"), method=b"HEAD")
    assert head.outcome == Refused(403)
    assert head.response.header(b"content-type") == [b"application/json"]


# Contract 1, path part: bytes that are not UTF-8 before '?'. Envoy's
# normalize_path percent-encodes them before any filter runs, so the filter
# sees `%FF`; either way the raw bytes must never reach the upstream, and
# the decision must not fall back to some other path (`/`). Allowed: Envoy
# refusing it, the filter's 400, or the decision on the escaped path.
NON_UTF8_PATH = [
    ("deny rule", b"/api/admin\xff", None, {DENIED}),
    ("deny rule, subpath", b"/api/admin/\xc3\x28", None, {DENIED}),
    ("/internal", b"/internal/\xff", "enterprise", {DENIED}),
    ("dot-dot over it", b"/\xff/../api/admin", None, {DENIED}),
    ("dot-dot from an open route", b"/healthz/\xff/../../api/admin", None, {DENIED}),
    ("feature route", b"/api/reports/\xff", "basic", {FEATURE}),
    ("licensed, no token", b"/api/\xffdata", None, {MISSING}),
    ("licensed, token", b"/api/\xffdata", "pro", {Fwd(b"/api/%FFdata")}),
]


@pytest.mark.parametrize("default", DEFAULTS)
@pytest.mark.parametrize("name,target,token,escaped", NON_UTF8_PATH, ids=[c[0] for c in NON_UTF8_PATH])
def test_non_utf8_path_part_h2(gateways, recorder, default, name, target, token, escaped):
    result = exchange(gateways.get(default), recorder, "h2", target, auth_headers(token))
    assert not_forwarded(result.outcome) or result.outcome in escaped, result.outcome
    if result.record is not None:
        assert all(b < 0x80 for b in result.record.target), result.record.target


@pytest.mark.parametrize("default", DEFAULTS)
@pytest.mark.parametrize("target", [b"/api/admin\xff", b"/api/\xffdata", b"/healthz/\xff"])
def test_non_utf8_path_part_h1_is_refused_by_envoy(gateways, recorder, default, target):
    result = exchange(gateways.get(default), recorder, "h1", target, [bearer(mint(plan="pro"))])
    assert result.outcome == Refused(400)


# ---------------------------------------------------------------------------
# 6: path_separated_prefix
# ---------------------------------------------------------------------------

SEPARATED = [
    ("/healthz", SAME),
    ("/healthz/", SAME),
    ("/healthz/live", SAME),
    ("/healthz?x=1", SAME),
    ("/healthz/live?x=/admin", SAME),
    ("/healthzadmin/secret", DENIED),
    ("/healthz-admin", DENIED),
    ("/healthz.json", DENIED),
    ("/HEALTHZ", DENIED),
    ("/healthz/../admin", DENIED),
    ("/api/data", MISSING),
]


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("target,expected", SEPARATED, ids=[c[0] for c in SEPARATED])
def test_path_separated_prefix(gateways, recorder, proto, target, expected):
    result = exchange(gateways.get("separated"), recorder, proto, target)
    assert result.outcome == (Fwd(target.encode()) if expected == SAME else expected)


# ---------------------------------------------------------------------------
# 2: hosts in canonical form
# ---------------------------------------------------------------------------

# Deny-rule hosts in another spelling: lower case, port dropped, one
# trailing dot dropped, before comparing.
DENIED_HOSTS = [
    "internal.example.com",
    "internal.example.com.",
    "INTERNAL.example.com.:443",
    "Internal.Example.Com",
    "INTERNAL.EXAMPLE.COM.",
    "internal.example.com:8443",
    "internal.example.com.:80",
    "db.internal.example.com",
    "db.internal.example.com.",
    "DB.Internal.Example.COM.:80",
]

# Other hosts that are not the deny rule's, whatever their spelling.
OTHER_HOSTS = [
    "gateway.example.com",
    "notinternal.example.com",
    "internal.example.com.evil.net",
    "internal.example.co",
    "example.com.",
]

# Syntactically broken hosts: Envoy refuses them, or the filter answers 400
# invalid_request (a host rule is consulted on every request here).
BROKEN_HOSTS = [
    "a:80:80",
    "internal.example.com:80:80",
    "user@internal.example.com",
    b"internal.example.com\xff",
    b"\xc3\xa9.internal.example.com",
    "",
]

# Beyond the written contract: not the deny rule's host in canonical form
# (or not a host at all), yet an upstream normalising a little differently
# would take them for it. They must not be forwarded: refused by Envoy, 400
# invalid_request, or treated as the deny rule's host.
LOOKALIKE_HOSTS = [
    "internal.example.com:",
    "internal.example.com..",
    "internal.example.com:abc",
    "internal.example.com:443:",
    "[internal.example.com]",
    "internal.example.com.:",
    ".internal.example.com",
]

# (config, token): default allow without a token, and default require with a
# valid one: both forward /other unless the host rule denies it.
HOST_SETUPS = [("allow", None), ("require", "pro")]


def host_cases(hosts):
    for default, token in HOST_SETUPS:
        for proto in PROTOS:
            for host in hosts:
                yield pytest.param(default, token, proto, _b(host), id=f"{default}-{proto}-{_b(host)!r}")


@pytest.mark.parametrize("default,token,proto,host", list(host_cases(DENIED_HOSTS)))
def test_host_spellings_of_a_deny_rule(gateways, recorder, default, token, proto, host):
    result = exchange(gateways.get(default), recorder, proto, "/other", auth_headers(token), host=host)
    assert result.outcome == DENIED


@pytest.mark.parametrize("default,token,proto,host", list(host_cases(OTHER_HOSTS)))
def test_other_hosts_are_forwarded(gateways, recorder, default, token, proto, host):
    result = exchange(gateways.get(default), recorder, proto, "/other", auth_headers(token), host=host)
    assert result.outcome == Fwd(b"/other")
    assert result.record.values(b"host") == [host]


@pytest.mark.parametrize("default,token,proto,host", list(host_cases(BROKEN_HOSTS)))
def test_broken_hosts_are_refused(gateways, recorder, default, token, proto, host):
    result = exchange(gateways.get(default), recorder, proto, "/other", auth_headers(token), host=host)
    assert not_forwarded(result.outcome), result.outcome


@pytest.mark.parametrize("default,token,proto,host", list(host_cases(LOOKALIKE_HOSTS)))
def test_lookalike_hosts_are_not_forwarded(gateways, recorder, default, token, proto, host):
    result = exchange(gateways.get(default), recorder, proto, "/other", auth_headers(token), host=host)
    assert not_forwarded(result.outcome) or result.outcome == DENIED, result.outcome


# Host from somewhere else than one plain Host header / :authority.
HOST_SOURCES = [
    # HTTP/1.1: two Host headers (Envoy joins them with ',').
    ("h1", "two hosts, other first", "/other", None,
     [("host", "gateway.example.com"), ("host", "internal.example.com")],
     "refused"),
    ("h1", "two hosts, internal first", "/other", None,
     [("host", "internal.example.com"), ("host", "gateway.example.com")], "refused"),
    ("h1", "two identical hosts", "/other", None,
     [("host", "internal.example.com"), ("host", "internal.example.com")], "refused"),
    # Absolute-form request-target: Envoy takes the host from it.
    ("h1", "absolute form", "http://internal.example.com./other", HOST, [], DENIED),
    ("h1", "absolute form, port and case", "http://Internal.Example.Com:80/other", HOST, [], DENIED),
    # HTTP/2: a host header instead of :authority.
    ("h2", "host header, no :authority", "/other", None, [("host", "internal.example.com.")], DENIED),
    ("h2", "host header, no :authority, wildcard", "/other", None, [("host", "DB.internal.example.com")], DENIED),
    ("h2", "duplicate :authority", "/other", None,
     [(":authority", "gateway.example.com"), (":authority", "internal.example.com")], "refused"),
]


@pytest.mark.parametrize("default,token", HOST_SETUPS)
@pytest.mark.parametrize("proto,name,target,host,headers,expected", HOST_SOURCES, ids=[c[1] for c in HOST_SOURCES])
def test_host_sources(gateways, recorder, default, token, proto, name, target, host, headers, expected):
    result = exchange(gateways.get(default), recorder, proto, target, auth_headers(token) + headers, host=host)
    if expected == "refused":
        assert not_forwarded(result.outcome), result.outcome
    else:
        assert result.outcome == expected


@pytest.mark.parametrize("default,token", HOST_SETUPS)
def test_h2_host_header_does_not_override_authority(gateways, recorder, default, token):
    """:authority wins; what the filter matched is what the upstream gets."""
    result = exchange(gateways.get(default), recorder, "h2", "/other",
                      [*auth_headers(token), ("host", "internal.example.com")])
    assert result.outcome == Fwd(b"/other")
    assert result.record.values(b"host") == [HOST]


# ---------------------------------------------------------------------------
# 3, 4: time claims and duplicate JSON members
# ---------------------------------------------------------------------------

TIME_CLAIMS = [
    ("exp 1e30", {"exp": 1e30}, MALFORMED),
    ("exp 2**64", {"exp": 2**64}, MALFORMED),
    ("negative nbf", {"nbf": -1}, MALFORMED),
    ("negative fractional nbf", {"nbf": -0.5}, MALFORMED),
    ("iat as a string", {"iat": "1700000000"}, MALFORMED),
    ("exp as a string", {"exp": "1900000000"}, MALFORMED),
    ("nbf 2**63", {"nbf": 2**63}, Deny(401, "not_yet_valid")),
    ("nbf 1e30", {"nbf": 1e30}, MALFORMED),
]


@pytest.mark.parametrize("name,extra,expected", TIME_CLAIMS, ids=[c[0] for c in TIME_CLAIMS])
def test_time_claims(gateways, recorder, name, extra, expected):
    result = exchange(gateways.get("require"), recorder, "h1", "/api/data", [bearer(mint(**extra))])
    assert result.outcome == expected


RS1 = '"alg":"RS256","kid":"rs1"'
DUPLICATES = [
    # name, JOSE header JSON, claims JSON, target, expected
    ("control: hand-signed, no duplicate", "{" + RS1 + "}", "{" + json_members() + "}", "/api/data", Fwd(b"/api/data")),
    ("header: kid twice, same value", '{"alg":"RS256","kid":"rs1","kid":"rs1"}', "{" + json_members() + "}",
     "/api/data", MALFORMED),
    ("header: kid twice, other key last", '{"alg":"RS256","kid":"es1","kid":"rs1"}', "{" + json_members() + "}",
     "/api/data", MALFORMED),
    ("header: alg twice", '{"alg":"none","alg":"RS256","kid":"rs1"}', "{" + json_members() + "}",
     "/api/data", MALFORMED),
    ("claims: iss twice, evil first", "{" + RS1 + "}", '{"iss":"https://evil.example.com",' + json_members() + "}",
     "/api/data", MALFORMED),
    ("claims: iss twice, evil last", "{" + RS1 + "}", "{" + json_members() + ',"iss":"https://evil.example.com"}',
     "/api/data", MALFORMED),
    ("claims: iss twice, same value", "{" + RS1 + "}", "{" + json_members() + f',"iss":"{ISSUER}"' + "}",
     "/api/data", MALFORMED),
    ("claims: exp twice, expired first", "{" + RS1 + "}", '{"exp":1,' + json_members() + "}", "/api/data",
     MALFORMED),
    ("claims: aud twice", "{" + RS1 + "}", '{"aud":"elsewhere",' + json_members() + "}", "/api/data", MALFORMED),
    ("claims: features twice", "{" + RS1 + "}", '{"features":[],' + json_members(features=["reports"]) + "}",
     "/api/reports", MALFORMED),
    ("claims: plan twice", "{" + RS1 + "}", '{"plan":"basic",' + json_members(plan="enterprise") + "}",
     "/admin", MALFORMED),
]


@pytest.mark.parametrize("name,header,payload,target,expected", DUPLICATES, ids=[c[0] for c in DUPLICATES])
def test_duplicate_json_members(gateways, recorder, name, header, payload, target, expected):
    token = sign_raw(header.encode(), payload.encode())
    result = exchange(gateways.get("require"), recorder, "h1", target, [bearer(token)])
    assert result.outcome == expected


# ---------------------------------------------------------------------------
# 5: strip_token on every route and every source
# ---------------------------------------------------------------------------

BASIC = "Basic dXNlcjpwdw=="
QUERY_BEFORE, QUERY_AFTER = b"a=%41&b=x+y&", b"flag&e=%2B%26&c="
COOKIES_BEFORE, COOKIES_AFTER = b'sid="x y"; b=;', b"  theme=dark"
OTHER_COOKIES = [b'sid="x y"', b"b=", b"theme=dark"]
SOURCE_SETS = {
    "authorization": {"authorization"},
    "x-license": {"x-license"},
    "query": {"query"},
    "cookie": {"cookie"},
    "all four at once": {"authorization", "x-license", "query", "cookie"},
    "Basic authorization and x-license": {"basic", "x-license"},
}
ROUTES = {"open": "/healthz", "licensed": "/api/data", "default": "/other"}


def strip_cases():
    for default in DEFAULTS:
        for route, path in ROUTES.items():
            for sources in SOURCE_SETS:
                for proto in PROTOS:
                    yield pytest.param(default, route, path, sources, proto,
                                       id=f"{default}-{route}-{sources}-{proto}")


@pytest.mark.parametrize("default,route,path,sources,proto", list(strip_cases()))
def test_strip_token_everywhere(gateways, recorder, default, route, path, sources, proto):
    token = mint(plan="pro").encode()
    used = SOURCE_SETS[sources]
    raw_other = b"n=\xff\xfe&" if proto == "h2" else b""  # raw non-ASCII query bytes: h2 only
    query = QUERY_BEFORE + raw_other + (b"license=" + token + b"&" if "query" in used else b"") + QUERY_AFTER
    target = path.encode() + b"?" + query
    headers = []
    if "authorization" in used:
        headers.append((b"authorization", b"Bearer " + token))
    if "basic" in used:
        headers.append((b"authorization", BASIC.encode()))
    if "x-license" in used:
        headers.append((b"x-license", token))
    if proto == "h1":
        cookie = COOKIES_BEFORE + (b" license=" + token + b";" if "cookie" in used else b"") + COOKIES_AFTER
        headers.append((b"cookie", cookie))
    else:  # h2 cookie crumbs, one header field per pair (RFC 9113 §8.2.3)
        crumbs = OTHER_COOKIES[:2] + ([b"license=" + token] if "cookie" in used else []) + OTHER_COOKIES[2:]
        headers += [(b"cookie", c) for c in crumbs]

    result = exchange(gateways.get(default), recorder, proto, target, headers)

    if route == "default" and default == "deny":
        assert result.outcome == DENIED
        return
    expected_target = path.encode() + b"?" + QUERY_BEFORE + raw_other + QUERY_AFTER
    assert result.outcome == Fwd(expected_target)
    record = result.record
    assert token not in raw_request(record), "the token reached the upstream"
    assert record.values(b"x-license") == []
    assert record.values(b"authorization") == ([BASIC.encode()] if "basic" in used else [])
    if proto == "h1" and "cookie" not in used:
        assert record.values(b"cookie") == [COOKIES_BEFORE + COOKIES_AFTER]
    else:
        assert cookie_pairs(record) == OTHER_COOKIES


# Where the token sits in the query string or the cookies ({T}: the token);
# everything else is kept as sent.
STRIP_POSITIONS = [
    ("query, only parameter", b"/api/data?license={T}", [], b"/api/data", None),
    ("query, first", b"/api/data?license={T}&a=1", [], b"/api/data?a=1", None),
    ("query, last", b"/api/data?a=%2f&license={T}", [], b"/api/data?a=%2f", None),
    ("query, escaped name", b"/api/data?licens%65={T}&a=1", [], b"/api/data?a=1", None),
    ("query, look-alike names kept", b"/api/data?xlicense=1&license={T}&License=2&license_=3", [],
     b"/api/data?xlicense=1&License=2&license_=3", None),
    ("cookie, only one", b"/api/data", [(b"cookie", b"license={T}")], b"/api/data", []),
    ("cookie, first", b"/api/data", [(b"cookie", b"license={T}; a=1")], b"/api/data", [b"a=1"]),
    ("cookie, last, no space", b"/api/data", [(b"cookie", b"a=1;license={T}")], b"/api/data", [b"a=1"]),
    ("cookie, quoted token", b"/api/data", [(b"cookie", b'a=1; license="{T}"; b="2"')], b"/api/data",
     [b"a=1", b'b="2"']),
    ("cookie, two cookie headers", b"/api/data", [(b"cookie", b"a=1"), (b"cookie", b"license={T}")], b"/api/data",
     [b"a=1"]),
    ("cookie, look-alike names kept", b"/api/data",
     [(b"cookie", b'xlicense=1; license={T}; License=2; b="license=3"')],
     b"/api/data", [b"xlicense=1", b"License=2", b'b="license=3"']),
]


@pytest.mark.parametrize("name,target,headers,expected_target,expected_cookies", STRIP_POSITIONS,
                         ids=[c[0] for c in STRIP_POSITIONS])
def test_strip_token_positions(gateways, recorder, name, target, headers, expected_target, expected_cookies):
    token = mint().encode()
    headers = [(n, v.replace(b"{T}", token)) for n, v in headers]
    result = exchange(gateways.get("require"), recorder, "h1", target.replace(b"{T}", token), headers)
    assert result.outcome == Fwd(expected_target)
    assert token not in raw_request(result.record)
    if expected_cookies is not None:
        assert cookie_pairs(result.record) == expected_cookies


def test_strip_token_open_route_keeps_non_ascii_cookies(gateways, recorder):
    """An open route does not read the token, but still removes it; the other
    cookie's raw bytes travel as they came."""
    token = mint().encode()
    result = exchange(gateways.get("allow"), recorder, "h1", "/healthz",
                      [(b"cookie", b"a=\xe9; license=" + token)])
    assert result.outcome == Fwd(b"/healthz")
    assert token not in raw_request(result.record)
    assert cookie_pairs(result.record) == [b"a=\xe9"]


# Odd spellings of a token source on an open route, which does not read the
# token: still removed ({T}: the token).
STRIP_ODD = [
    ("odd-case scheme", "/healthz", [(b"authorization", b"bEaReR {T}")], b"/healthz"),
    ("non-UTF-8 Bearer value", "/healthz", [(b"authorization", b"Bearer \xff{T}")], b"/healthz"),
    ("non-UTF-8 x-license", "/healthz", [(b"x-license", b"{T}\xff")], b"/healthz"),
    ("x-license twice", "/healthz", [(b"x-license", b"{T}"), (b"x-license", b"other")], b"/healthz"),
    ("authorization twice", "/healthz", [(b"authorization", b"Bearer {T}"), (b"authorization", b"Bearer x")],
     b"/healthz"),
    ("license cookie twice", "/healthz", [(b"cookie", b"license={T}; a=1; license=x")], b"/healthz"),
    ("license parameter twice", "/healthz?license={T}&a=1&license=x", [], b"/healthz?a=1"),
    # Some upstreams split the query on ";" too: no copy survives that reading.
    ("license parameter after a semicolon", "/healthz?a=1;license={T};b=2", [], b"/healthz?a=1;b=2"),
]


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("name,target,headers,expected_target", STRIP_ODD, ids=[c[0] for c in STRIP_ODD])
def test_strip_token_odd_sources_on_open_route(gateways, recorder, proto, name, target, headers, expected_target):
    token = mint().encode()
    headers = [(n, v.replace(b"{T}", token)) for n, v in headers]
    result = exchange(gateways.get("require"), recorder, proto, target.encode().replace(b"{T}", token), headers)
    assert result.outcome == Fwd(expected_target)
    record = result.record
    assert token not in raw_request(record)
    assert record.values(b"authorization") == []
    assert record.values(b"x-license") == []
    assert [p for p in cookie_pairs(record) if p.startswith(b"license")] == []


@pytest.mark.parametrize("default", ["require", "allow"])
def test_strip_token_raw_bytes_in_the_query_token_h2(gateways, recorder, default):
    token = mint().encode()
    result = exchange(gateways.get(default), recorder, "h2", b"/healthz?license=" + token + b"\xff&a=\xfe")
    assert result.outcome == Fwd(b"/healthz?a=\xfe")


# ---------------------------------------------------------------------------
# 7: look-alike copies of the headers the filter owns
# ---------------------------------------------------------------------------

FORGED = [
    ("x-license-status", "active"), ("x-license-status", "grace"),
    ("x-license-dry-run", "forged"),
    ("x-license-tenant", "evil-corp"), ("x-license-tenant", "evil-corp-2"),
    ("x-license-plan", "enterprise"), ("x-license-id", "forged-id"),
    ("x_license_tenant", "evil-corp-3"), ("x_license_status", "active"),
    ("x_license_dry_run", "forged"), ("x_license_plan", "enterprise"), ("x_license_id", "forged-id"),
    ("x-license_tenant", "evil-corp-4"), ("x_license-tenant", "evil-corp-5"),
]
FORGED_H1_CASE = [
    ("X-License-Status", "grace"), ("X-LICENSE-TENANT", "evil-corp-6"), ("X_License_Tenant", "evil-corp-7"),
    ("X-License-Dry-Run", "forged"), ("X_LICENSE_STATUS", "grace"), ("X-License-Id", "forged-id"),
]
FORGED_VALUES = [b"evil-corp", b"enterprise", b"forged", b"grace"]

LOOKALIKE_ROUTES = [
    # route, path, token claims (None: no token), headers the filter sets
    ("licensed", "/api/data", {"plan": "pro", "jti": "lic-7"},
     {b"x-license-status": [b"active"], b"x-license-tenant": [b"acme"], b"x-license-plan": [b"pro"],
      b"x-license-id": [b"lic-7"]}),
    ("licensed, no plan claim", "/api/data", {"jti": "lic-8"},
     {b"x-license-status": [b"active"], b"x-license-tenant": [b"acme"], b"x-license-id": [b"lic-8"]}),
    ("open", "/healthz", None, {}),
    ("default allow", "/other", None, {}),
]


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("route,path,token_claims,set_by_filter", LOOKALIKE_ROUTES,
                         ids=[c[0] for c in LOOKALIKE_ROUTES])
def test_forged_license_headers_never_reach_the_upstream(gateways, recorder, proto, route, path, token_claims,
                                                         set_by_filter):
    headers = list(FORGED) + (FORGED_H1_CASE if proto == "h1" else [])
    if token_claims is not None:
        headers.append(bearer(mint(**token_claims)))
    result = exchange(gateways.get("allow"), recorder, proto, path, headers)
    assert result.outcome == Fwd(path.encode())
    record = result.record
    seen = {}
    for name in record.names():
        if name.replace(b"_", b"-").startswith(b"x-license"):
            seen.setdefault(name, []).extend(record.values(name))
    assert seen == set_by_filter
    raw = raw_request(record)
    assert [v for v in FORGED_VALUES if v in raw] == []


def test_h2_upper_case_header_names_are_refused(gateways, recorder):
    """HTTP/2 header names must be lower case: Envoy refuses the stream."""
    result = exchange(gateways.get("allow"), recorder, "h2", "/healthz", [("X-License-Tenant", "evil-corp")])
    assert result.outcome == RESET


# ---------------------------------------------------------------------------
# 8: the token's own headers
# ---------------------------------------------------------------------------


def token_header_cases():
    valid = mint(plan="pro")
    other = mint(plan="pro", jti="lic-other")
    ff = "\udcff"  # stands for a raw 0xff byte (surrogateescape)
    cases = [
        ("x-license twice, valid then garbage", [("x-license", valid), ("x-license", "garbage")], MALFORMED),
        ("x-license twice, garbage then valid", [("x-license", "garbage"), ("x-license", valid)], MALFORMED),
        ("x-license twice, two valid tokens", [("x-license", valid), ("x-license", other)], MALFORMED),
        ("authorization twice, differing", [bearer(valid), bearer("garbage")], MALFORMED),
        ("authorization twice, two valid tokens", [bearer(valid), bearer(other)], MALFORMED),
        ("license cookie twice in one header", [("cookie", f"license={valid}; license=garbage")], MALFORMED),
        ("license cookie twice, garbage first", [("cookie", f"license=garbage; license={valid}")], MALFORMED),
        ("non-UTF-8 token in authorization", [bearer(valid + ff)], MALFORMED),
        ("non-UTF-8 byte before the token", [bearer(ff + valid)], MALFORMED),
        ("non-UTF-8 x-license", [("x-license", valid + ff)], MALFORMED),
        ("non-UTF-8 authorization, valid x-license", [bearer(valid + ff), ("x-license", valid)], MALFORMED),
        ("non-UTF-8 license cookie", [("cookie", f"license={valid}{ff}")], MALFORMED),
        ("x-license with surrounding whitespace", [("x-license", f" \t{valid} \t")], "ok"),
        ("Bearer and several spaces", [("authorization", f"Bearer   {valid}  ")], "ok"),
        ("bEaReR scheme", [("authorization", f"bEaReR {valid}")], "ok"),
        ("BEARER scheme", [("authorization", f"BEARER {valid}")], "ok"),
        ("Basic only", [("authorization", BASIC)], MISSING),
        ("Basic and x-license", [("authorization", BASIC), ("x-license", valid)], "ok"),
    ]
    for name, headers, expected in cases:
        for proto in PROTOS:
            encoded = [(n.encode(), v.encode("utf-8", "surrogateescape")) for n, v in headers]
            yield pytest.param(proto, encoded, expected, id=f"{proto}-{name}")


@pytest.mark.parametrize("proto,headers,expected", list(token_header_cases()))
def test_token_headers(gateways, recorder, proto, headers, expected):
    result = exchange(gateways.get("require"), recorder, proto, "/api/data", headers)
    if expected != "ok":
        assert result.outcome == expected
        return
    assert result.outcome == Fwd(b"/api/data")
    basic = [v for n, v in headers if n == b"authorization" and v.startswith(b"Basic")]
    assert result.record.values(b"authorization") == basic
    assert result.record.values(b"x-license") == []


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("query", ["license={T}&license=garbage", "license=garbage&a=1&license={T}"],
                         ids=["valid first", "garbage first"])
def test_query_token_twice_with_differing_values(gateways, recorder, proto, query):
    query = query.replace("{T}", mint(plan="pro"))
    result = exchange(gateways.get("require"), recorder, proto, f"/api/data?{query}")
    assert result.outcome == MALFORMED


def test_license_cookie_in_two_headers_with_differing_values(gateways, recorder):
    valid = mint(plan="pro")
    result = exchange(gateways.get("require"), recorder, "h1", "/api/data",
                      [("cookie", f"license={valid}"), ("cookie", "license=garbage")])
    assert result.outcome == MALFORMED
