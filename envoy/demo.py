"""The gateway demo: license-gate in a real Envoy on 127.0.0.1:10000 in front
of an echo upstream, with a demo signing key (created on first use) and demo
licenses in .demo/ (git-ignored), all made by licensectl. Envoy fetches the vendor's public keys
(JWKS) and signed revocation list from a local key server, as a production
gateway would (keys.remote, revocation.remote). Prints copy-paste curl
lines, each with the `licensectl check` line that gives the same answer
offline; Ctrl-C stops everything it started. Run it through scripts/run.sh."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import licensectl
from gateway import ROOT, EchoUpstream, Envoy, PerIp
from keyserver import JWKS_PATH, REVOCATIONS_PATH, KeyServer
from reference import reference_config

ISSUER = "https://licenses.demo.example.com"
AUDIENCE = "gateway.demo.example.com"
KID = "demo-2026"
GRACE = 7 * 86_400
DAY = 86_400


def signing_key(ctl: Path, demo: Path) -> Path:
    """The demo RS256 key (licensectl keygen), created once; its JWKS beside it."""
    private = demo / "keys" / f"{KID}.key.pem"
    if not private.exists():
        licensectl.output(ctl, "keygen", "--alg", "RS256", "--kid", KID, "--bits", "2048",
                          "--out", str(demo / "keys"))
    return private


def remote(path: str, refresh: int) -> dict:
    return {"cluster": "license-keys", "path": path, "authority": "keys.demo.example.com",
            "refresh_seconds": refresh, "timeout_ms": 2000, "max_stale_seconds": 86_400}


def plugin_config() -> dict:
    return {
        "issuers": [ISSUER],
        "audiences": [AUDIENCE],
        "algorithms": ["RS256"],
        # Keys and revocations come from the key server (see keyserver.py).
        "keys": {"remote": remote(JWKS_PATH, 300)},
        "revocation": {"remote": remote(REVOCATIONS_PATH, 30)},
        # The token sources of the tests' reference configuration.
        "token": reference_config()["token"],
        "grace_period_seconds": GRACE,
        # Quotas per tenant, enforced by Envoy's local rate limiter after the gate
        # (generated below by `licensectl quota`); enterprise inherits pro's.
        "plans": {"basic": {"features": ["api"], "quota": {"requests_per_second": 2, "burst": 5}},
                  "pro": {"inherits": ["basic"], "features": ["reports"],
                          "quota": {"requests_per_second": 20, "burst": 40}},
                  "enterprise": {"inherits": ["pro"], "features": ["sso", "audit"]}},
        "rules": [
            {"match": {"path_separated_prefix": "/healthz"}, "license": "none"},
            {"match": {"path_separated_prefix": "/api/reports"}, "require": {"all": ["reports"]}},
            {"match": {"path_separated_prefix": "/api/admin"}, "require": {"any": ["sso", "audit"]}},
            {"match": {"prefix": "/api/"}, "require": {"all": ["api"]}},
        ],
        "default": "deny",
        "forward": {"headers": {"x-license-tenant": "tenant", "x-license-plan": "plan", "x-license-id": "jti"},
                    "strip_token": True},
    }


def licenses(ctl: Path, demo: Path, key: Path) -> dict[str, Path]:
    """Demo licenses (licensectl mint), minted afresh on every start so their dates stay meaningful."""
    now = int(time.time())
    kinds = {
        "allowed": ["--plan", "pro", "--tenant", "acme", "--expires-in", "30d"],
        "expired": ["--plan", "pro", "--tenant", "globex", "--not-before", str(now - 40 * DAY),
                    "--expires-at", str(now - 10 * DAY)],
        "basic": ["--plan", "basic", "--tenant", "initech", "--expires-in", "30d"],
        "grace": ["--plan", "pro", "--tenant", "umbrella", "--not-before", str(now - 30 * DAY),
                  "--expires-at", str(now - 1 * DAY)],
        "revoked": ["--plan", "pro", "--tenant", "hooli", "--expires-in", "30d"],
    }
    out = {}
    (demo / "licenses").mkdir(parents=True, exist_ok=True)
    for name, args in kinds.items():
        token = licensectl.output(ctl, "mint", "--key", str(key), "--kid", KID, "--iss", ISSUER, "--aud", AUDIENCE,
                                  "--sub", f"customer-{name}", "--id", f"lic-demo-{name}", *args)
        path = demo / "licenses" / f"{name}.jwt"
        path.write_text(token)
        out[name] = path
    return out


def curl_lines(port: int, files: dict[str, Path], check: list[str]) -> list[tuple[str, str]]:
    """(label, the curl line and, under it, the licensectl check line giving the filter's answer offline)."""
    def line(path: str, lic: str) -> str:
        curl = f'curl -i http://127.0.0.1:{port}{path} -H "Authorization: Bearer $(cat {files[lic]})"'
        return f"{curl}\n{shlex.join([*check, '--path', path])} < {shlex.quote(str(files[lic]))}"
    return [
        ("allowed (pro plan, reports feature) -> 200", line("/api/reports", "allowed")),
        ("expired beyond the grace period     -> 401 expired", line("/api/reports", "expired")),
        ("basic plan lacks 'reports'          -> 403 feature_missing", line("/api/reports", "basic")),
        ("expired yesterday, in grace         -> 200, x-license-status: grace", line("/api/reports", "grace")),
        ("on the revocation list              -> 401 revoked", line("/api/reports", "revoked")),
    ]


REVOKED = ["lic-demo-revoked"]


def wait_for_keys(envoy: Envoy, seconds: float = 10.0) -> None:
    """Until the gateway holds its first keys and revocation list (a second or so)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (envoy.stat("wasmcustom.license_gate.jwks_fetch_success") > 0
                and envoy.stat("wasmcustom.license_gate.revocation_fetch_success") > 0):
            time.sleep(0.6)  # one tick: every worker has picked them up
            return
        time.sleep(0.1)
    print("warning: the gateway has not fetched its keys yet; see the Envoy log", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=10000)
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument("--upstream-port", type=int, default=10001)
    parser.add_argument("--keys-port", type=int, default=10002)
    parser.add_argument("--demo-dir", type=Path, default=ROOT / ".demo")
    parser.add_argument("--licensectl", type=Path, help="the licensectl binary (default: cargo build it)")
    args = parser.parse_args()

    demo = args.demo_dir.resolve()
    demo.mkdir(parents=True, exist_ok=True)
    ctl = args.licensectl.resolve() if args.licensectl else licensectl.build()
    key = signing_key(ctl, demo)
    files = licenses(ctl, demo, key)
    # What the key server publishes, made by licensectl: the JWKS and the signed revocation list.
    jwks, revocations, config = demo / "jwks.json", demo / "revocations.jwt", demo / "plugin.json"
    jwks.write_text(licensectl.output(ctl, "jwks", str(key)))
    revocations.write_text(licensectl.output(ctl, "revoke", "--key", str(key), "--kid", KID, "--iss", ISSUER,
                                             *(f"--id={i}" for i in REVOKED)))
    config.write_text(json.dumps(plugin_config(), indent=2))
    check = [str(ctl), "check", "--config", str(config), "--jwks", str(jwks), "--revocations", str(revocations)]
    quota = licensectl.output(ctl, "quota", "--config", str(config), "--tenants", "1000")

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    keys = KeyServer(args.keys_port)
    keys.serve(JWKS_PATH, jwks.read_text())
    keys.serve(REVOCATIONS_PATH, revocations.read_text())
    with EchoUpstream(args.upstream_port) as upstream, keys, \
            Envoy(plugin_config(), upstream.port, concurrency=2, listen_port=args.port, key_server_port=keys.port,
                  admin_port=args.admin_port, workdir=demo / "envoy", quota_filter=quota,
                  per_ip=PerIp(requests_per_second=200, burst=400)) as envoy:
        wait_for_keys(envoy)
        print(f"license-gate is up: gateway http://127.0.0.1:{envoy.listen_port}, "
              f"upstream echo :{upstream.port}, key server http://127.0.0.1:{keys.port}{JWKS_PATH}, "
              f"admin http://127.0.0.1:{envoy.admin_port}")
        print(f"Envoy log: {envoy.log_path}   access log: {envoy.access_log_path}\n")
        for label, line in curl_lines(envoy.listen_port, files, check):
            print(f"# {label}\n{line}\n")
        print(f"# quota: basic allows a burst of 5, then 429 (x-ratelimit-* headers say when to retry):\n"
              f"for i in $(seq 7); do curl -s -o /dev/null -w '%{{http_code}} ' "
              f"-H \"Authorization: Bearer $(cat {files['basic']})\" "
              f"http://127.0.0.1:{envoy.listen_port}/api/data; done; echo\n")
        print(f"# stats: curl -s http://127.0.0.1:{envoy.admin_port}/stats/prometheus | grep license_gate")
        print("\nCtrl-C stops Envoy and the upstream.", flush=True)
        while not stop.is_set():
            if envoy.process and envoy.process.poll() is not None:
                print(f"envoy exited ({envoy.process.returncode}); see {envoy.log_path}", file=sys.stderr)
                return 1
            stop.wait(0.5)
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
