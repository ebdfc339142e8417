"""A loopback key server for license-gate's keys.remote and revocation.remote:
serves a JWKS and a signed revocation list that the demo and the end-to-end
tests change while Envoy runs, and counts the requests it gets."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

JWKS_PATH = "/.well-known/jwks.json"
REVOCATIONS_PATH = "/revocations.jwt"
REVOCATIONS_TYP = "license-revocations+jwt"


def public_jwk(alg: str, kid: str, public_pem: str) -> dict:
    """A public key as a JWK with its kid and alg (what a JWKS publishes)."""
    if alg[:2] in ("RS", "PS"):
        algorithm = RSAAlgorithm(RSAAlgorithm.SHA256)
    elif alg.startswith("ES"):
        algorithm = ECAlgorithm(ECAlgorithm.SHA256)
    else:
        algorithm = OKPAlgorithm()
    jwk = json.loads(algorithm.to_jwk(algorithm.prepare_key(public_pem)))
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


def revocation_list(private_pem: str, alg: str, kid: str, issuer: str, revoked: list[str],
                    issued_at: int | None = None, next_update: int = 60) -> str:
    """The compact JWS revocation.remote reads: typ license-revocations+jwt."""
    iat = int(time.time()) if issued_at is None else issued_at
    payload = {"iss": issuer, "iat": iat, "next_update": iat + next_update,
               "revoked": [{"id": i} for i in revoked]}
    return jwt.encode(payload, private_pem, algorithm=alg, headers={"kid": kid, "typ": REVOCATIONS_TYP})


@dataclass
class Document:
    """One served document: its body, or a failure to answer with."""

    body: bytes = b""
    status: int = 200
    # Seconds to wait before answering (longer than the filter's timeout_ms: a timeout).
    delay: float = 0.0
    etag: str | None = None


@dataclass
class KeyServerState:
    documents: dict[str, Document] = field(default_factory=dict)
    requests: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, path: str, since: float = 0.0) -> int:
        with self.lock:
            return sum(1 for at, p in self.requests if p == path and at >= since)


class KeyServer:
    """ThreadingHTTPServer on 127.0.0.1 serving the documents in `state`."""

    def __init__(self, port: int = 0):
        self.state = KeyServerState()
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with state.lock:
                    state.requests.append((time.monotonic(), self.path))
                    doc = state.documents.get(self.path)
                if doc is None:
                    doc = Document(b"not found", 404)
                if doc.delay:
                    time.sleep(doc.delay)
                if doc.etag and self.headers.get("if-none-match") == doc.etag and doc.status == 200:
                    self.send_response(304)
                    self.send_header("etag", doc.etag)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                self.send_response(doc.status)
                if doc.etag:
                    self.send_header("etag", doc.etag)
                self.send_header("content-length", str(len(doc.body)))
                self.end_headers()
                self.wfile.write(doc.body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def serve(self, path: str, body: bytes | str, status: int = 200, delay: float = 0.0,
              etag: str | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        with self.state.lock:
            self.state.documents[path] = Document(data, status, delay, etag)

    def serve_jwks(self, jwks: list[dict]) -> None:
        self.serve(JWKS_PATH, json.dumps({"keys": jwks}))

    def __enter__(self) -> KeyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
