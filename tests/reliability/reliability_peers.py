"""A hostile HTTP(S) peer: it answers each request with a scripted misbehaviour on a raw socket.

Every answer is written by hand so it can be wrong in the ways real peers are: a 500, no answer at all, malformed or
mislabelled JSON, a body cut short or dripped a byte at a time, a reset connection, a redirect to itself, a 429 with
``Retry-After``, or a different TLS certificate from one connection to the next. Scripts are per route (``METHOD
/path``): a list of actions used in turn, the last one repeating. Nothing here waits without a bound: a stalled
answer ends when the peer stops.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wizard.lab.certs import NodeCertificate


@dataclass
class Request:
    method: str
    path: str  # without the query
    query: str
    headers: dict[str, str]
    body: bytes


class Connection:
    """What an action may do with the client's connection."""

    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock = sock
        self.stop = stop
        self.keep_alive = True

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


Action = Callable[[Request, Connection], None]
REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 302: "Found", 400: "Bad Request"}
REASONS |= {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}
REASONS |= {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def head(
    status: int, length: int, content_type: str = "application/json", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", f"Content-Length: {length}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _body(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def reply(status: int, body: Any = b"", content_type: str = "application/json", **headers: str) -> Action:
    """A well-formed answer (``headers`` use ``_`` for ``-``: ``Retry_After="1"``)."""
    data = _body(body)
    extra = {k.replace("_", "-"): v for k, v in headers.items()}

    def act(req: Request, conn: Connection) -> None:
        conn.send(head(status, len(data), content_type, extra) + data)

    return act


def stall() -> Action:
    """Read the request, never answer (until the peer stops)."""

    def act(req: Request, conn: Connection) -> None:
        conn.stop.wait()
        conn.keep_alive = False

    return act


def drip(status: int, body: Any, interval: float) -> Action:
    """Headers at once, then the body one byte every ``interval`` seconds: a link that never quite stalls."""
    data = _body(body)

    def act(req: Request, conn: Connection) -> None:
        conn.send(head(status, len(data)))
        for i in range(len(data)):
            if conn.stop.wait(interval):
                break
            conn.send(data[i : i + 1])

    return act


def truncated(status: int, body: Any) -> Action:
    """Announce the whole body, send half of it, close."""
    data = _body(body)

    def act(req: Request, conn: Connection) -> None:
        conn.send(head(status, len(data)) + data[: len(data) // 2])
        conn.keep_alive = False

    return act


def reset() -> Action:
    """Close with a TCP reset instead of an answer."""

    def act(req: Request, conn: Connection) -> None:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.keep_alive = False

    return act


def redirect_to_self() -> Action:
    def act(req: Request, conn: Connection) -> None:
        conn.send(head(302, 0, "", {"Location": req.path}))

    return act


@dataclass
class HostilePeer:
    """An HTTP(S) server on 127.0.0.1 (a free port) that plays scripts; use as a context manager."""

    certificate: NodeCertificate | None = None
    scripts: dict[str, list[Action]] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._context = self.certificate.server_context() if self.certificate else None
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"{'https' if self.certificate else 'http'}://127.0.0.1:{self.port}"

    def on(self, route: str, *actions: Action) -> HostilePeer:
        """Script ``route`` (``"GET /path"``): each request takes the next action; the last one repeats."""
        with self._lock:
            self.scripts[route] = list(actions)
        return self

    def present(self, certificate: NodeCertificate) -> None:
        """New connections get this certificate (the peer was reinstalled, or someone is in the middle)."""
        self._context = certificate.server_context()

    def __enter__(self) -> HostilePeer:
        accept = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(raw,), name="hostile-conn", daemon=True)
            with self._lock:
                self._conns.append(raw)
                self._threads.append(thread)
            thread.start()

    def _serve(self, raw: socket.socket) -> None:
        sock: socket.socket = raw
        try:
            raw.settimeout(30)
            if self._context is not None:
                sock = self._context.wrap_socket(raw, server_side=True)
            buffer = b""
            while not self._stop.is_set():
                request, buffer = self._read(sock, buffer)
                if request is None:
                    return
                conn = Connection(sock, self._stop)
                self._action(request)(request, conn)
                if not conn.keep_alive:
                    return
        except (OSError, ssl.SSLError):
            return  # the client gave up or refused our certificate: both are what some cases want
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def _action(self, request: Request) -> Action:
        route = f"{request.method} {request.path}"
        with self._lock:
            self.hits[route] += 1
            self.requests.append(request)
            script = self.scripts.get(route)
            if not script:
                return reply(404, {"message": f"no such route {route}"})
            return script.pop(0) if len(script) > 1 else script[0]

    @staticmethod
    def _read(sock: socket.socket, buffer: bytes) -> tuple[Request | None, bytes]:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                return None, b""
            buffer += chunk
        header, buffer = buffer.split(b"\r\n\r\n", 1)
        lines = header.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        while len(buffer) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return None, b""
            buffer += chunk
        body, buffer = buffer[:length], buffer[length:]
        path, _, query = target.partition("?")
        return Request(method, path, query, headers, body), buffer
