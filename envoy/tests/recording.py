"""A raw recording upstream for the adversarial end-to-end tests.

Envoy talks HTTP/1.1 to it. It answers every request 200 and keeps the exact
bytes it received: the request line and each header line, undecoded (Python's
http.server re-decodes header bytes as latin-1 and folds them, which hides
exactly what these tests look for). Each answer names the record it made
(`x-recorded: <n>`), and a test marks its requests with a unique
`x-adversarial-id` header, so it can ask what reached the upstream, or that
nothing did.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import Self

MARK = b"x-adversarial-id"


@dataclass
class Recorded:
    """One request as the upstream received it, bytes as they were."""

    request_line: bytes
    header_lines: list[bytes]
    body: bytes = b""
    index: int = -1
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for line in self.header_lines:
            name, _, value = line.partition(b":")
            self.headers.append((name, value.strip(b" \t")))

    @property
    def method(self) -> bytes:
        return self.request_line.split(b" ", 1)[0]

    @property
    def target(self) -> bytes:
        """The request-target (`/path?query`), exactly as received."""
        parts = self.request_line.split(b" ")
        return parts[1] if len(parts) == 3 else b""

    def values(self, name: bytes | str) -> list[bytes]:
        """Every value of a header, names compared case-insensitively."""
        want = (name.encode() if isinstance(name, str) else name).lower()
        return [v for n, v in self.headers if n.lower() == want]

    def names(self) -> list[bytes]:
        """Every header name, lower-cased, in order."""
        return [n.lower() for n, _ in self.headers]


class RecordingUpstream:
    """A threaded HTTP/1.1 server on 127.0.0.1 that records every request."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.records: list[Recorded] = []
        self.lock = threading.Lock()
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def marked(self, mark: str) -> list[Recorded]:
        """The requests that carried `x-adversarial-id: <mark>`."""
        want = mark.encode()
        with self.lock:
            return [r for r in self.records if want in r.values(MARK)]

    def get(self, index: int) -> Recorded:
        with self.lock:
            return self.records[index]

    def _accept(self) -> None:
        while not self.closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            conn.settimeout(30)
            try:
                while True:
                    while b"\r\n\r\n" not in buf:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    lines = head.split(b"\r\n")
                    record = Recorded(request_line=lines[0], header_lines=lines[1:])
                    body, buf = self._body(conn, record, buf)
                    record.body = body
                    with self.lock:
                        record.index = len(self.records)
                        self.records.append(record)
                    answer = b"recorded %d" % record.index
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                                 b"x-recorded: %d\r\ncontent-length: %d\r\n\r\n%s"
                                 % (record.index, len(answer), b"" if record.method == b"HEAD" else answer))
            except OSError:
                return

    @staticmethod
    def _read(conn: socket.socket, buf: bytes, n: int) -> bytes:
        while len(buf) < n:
            chunk = conn.recv(65536)
            if not chunk:
                raise OSError("connection closed in a body")
            buf += chunk
        return buf

    def _body(self, conn: socket.socket, record: Recorded, buf: bytes) -> tuple[bytes, bytes]:
        length = record.values(b"content-length")
        if length:
            n = int(length[0])
            buf = self._read(conn, buf, n)
            return buf[:n], buf[n:]
        if any(b"chunked" in v.lower() for v in record.values(b"transfer-encoding")):
            body = b""
            while True:
                while b"\r\n" not in buf:
                    buf = self._read(conn, buf, len(buf) + 1)
                size_line, buf = buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                buf = self._read(conn, buf, size + 2)
                body, buf = body + buf[:size], buf[size + 2:]
                if size == 0:
                    return body, buf
        return b"", buf
