"""A small HTTP forward proxy on 127.0.0.1 that fails chosen requests on purpose.

The partner client's `requests.Session` is pointed at it (`session.proxies`), so URLs,
DPoP `htu` and assertion audiences stay the gateway's own. One request per connection:
the proxy reads the request, forwards it with `Connection: close`, reads the whole
answer and passes it back — or, for a planned fault, answers itself, or forwards the
request and then hangs up without a word (the server acted, the client never heard).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "proxy-connection", "keep-alive"}


@dataclass
class Fault:
    method: str
    path: str
    #: "drop": forward, then close without answering; "answer": reply `status` unforwarded
    action: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Exchange:
    method: str
    path: str  # without the query
    headers: dict[str, str]  # lower-case names
    body: bytes
    upstream_status: int | None  # None when the proxy answered itself
    answered: bool  # whether the client got a response

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class FaultyProxy:
    def __init__(self) -> None:
        self._listener = _bind()
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.faults: list[Fault] = []
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="faulty-proxy", daemon=True)
        self._thread.start()

    def fail(
        self,
        method: str,
        path: str,
        action: str,
        status: int = 0,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        """Fail the next request to `method path` once (faults queue in order)."""
        with self._lock:
            self.faults.append(Fault(method, path, action, status, headers or {}, body))

    def seen(self, method: str, path: str) -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if e.method == method and e.path == path]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        self._thread.join(timeout=5)

    # -- serving -------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for n, fault in enumerate(self.faults):
                if fault.method == method and fault.path == path:
                    return self.faults.pop(n)
        return None

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            request = _read_request(conn)
            if request is None:
                return
            method, target, headers, body = request
            url = urlsplit(target)
            fault = self._take_fault(method, url.path)
            if fault is not None and fault.action == "answer":
                status, answer = None, _response(fault.status, fault.headers, fault.body)
            else:
                path = url.path + (f"?{url.query}" if url.query else "")
                host, port = url.hostname or "127.0.0.1", url.port or 80
                answer = _forward(host, port, f"{method} {path}", headers, body)
                status = int(answer.split(b" ", 2)[1])
            answered = fault is None or fault.action != "drop"
            with self._lock:  # recorded before the client can act on the answer
                self.exchanges.append(Exchange(method, url.path, headers, body, status, answered))
            if answered:
                conn.sendall(answer)
            # a dropped request: closed without a byte of answer


def _bind() -> socket.socket:
    """Listen on a port the OS hands out (port 0): never one another run holds."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener


def _read_request(conn: socket.socket) -> tuple[str, str, dict[str, str], bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return method, target, headers, body


def _forward(host: str, port: int, line: str, headers: dict[str, str], body: bytes) -> bytes:
    """Send the request to the gateway and read its whole answer (it closes after it)."""
    lines = [f"{line} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k not in HOP_BY_HOP]
    lines.append("connection: close")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    with socket.create_connection((host, port), timeout=30) as upstream:
        upstream.sendall(raw)
        chunks = []
        while chunk := upstream.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _response(status: int, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} Injected"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@contextlib.contextmanager
def faulty_proxy() -> Iterator[FaultyProxy]:
    proxy = FaultyProxy()
    try:
        yield proxy
    finally:
        proxy.close()
