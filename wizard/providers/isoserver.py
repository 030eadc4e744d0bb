"""The ISO server: serves the appliance ISO (and seed ISOs) from the jump host to the nodes' BMCs.

A BMC mounts virtual media by URL, so it must reach the jump host over HTTP(S). Every URL carries a random per-run
token as its first path segment: nothing is served without it, a wrong token gets a bare 404 that says nothing about
what exists, and logs never show it. Each connection runs in its own thread (several BMCs read at once, each often
with several range readers); plain HTTP sends file bytes with ``sendfile`` (zero-copy), TLS falls back to chunked
reads. Bytes sent are counted per file and client address as they leave, which is each node's boot-media progress.

HTTP semantics: GET and HEAD; ``Range`` with a single ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` gives 206 with
``Content-Range``; an unsatisfiable single range gives 416 with ``Content-Range: bytes */size``. A multi-range request
(or a malformed Range header) is answered 200 with the whole file, as RFC 9110 allows a server to ignore Range; BMCs
never ask for multipart/byteranges. ``If-Range`` is honoured against the ETag and Last-Modified we send.
"""

from __future__ import annotations

import contextlib
import email.utils
import hmac
import io
import ipaddress
import logging
import os
import re
import secrets
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, unquote, urlsplit

from wizard.core.errors import WizardError
from wizard.core.redact import REDACTOR

log = logging.getLogger(__name__)

#: Bytes handed to one ``sendfile`` call: large enough to be zero-copy efficient, small enough that the byte
#: counters (the progress bar) move several times a second even on a slow link.
SENDFILE_CHUNK = 8 * 1024 * 1024
#: Read size when the bytes must pass through user space (TLS, or no sendfile on this platform).
READ_CHUNK = 256 * 1024
#: An idle keep-alive connection (or a stalled reader) is closed after this many seconds.
SOCKET_TIMEOUT = 120.0
POLL_INTERVAL = 0.05


@dataclass(frozen=True)
class ClientStats:
    """What one client address read of one file."""

    bytes_sent: int
    requests: int
    active: int  # requests for this file in progress right now
    first_seen: float  # time.time() of its first request
    last_seen: float


@dataclass(frozen=True)
class FileStats:
    name: str
    size: int
    clients: dict[str, ClientStats]

    @property
    def bytes_sent(self) -> int:
        return sum(c.bytes_sent for c in self.clients.values())

    @property
    def active(self) -> int:
        return sum(c.active for c in self.clients.values())


@dataclass(frozen=True)
class IsoServerSnapshot:
    """An immutable view of everything served so far; ``version`` grows with every change."""

    files: dict[str, FileStats]
    connections: int
    version: int


@dataclass
class _Published:
    path: Path
    size: int
    mtime: float
    etag: str
    clients: dict[str, _Client] = field(default_factory=dict)


@dataclass
class _Client:
    bytes_sent: int = 0
    requests: int = 0
    active: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0


@dataclass(frozen=True)
class _Range:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class _Unsatisfiable(Exception):
    pass


def parse_range(header: str, size: int) -> _Range | None:
    """The single byte range ``header`` asks for, or None to serve the whole file.

    None for an absent, malformed or multi-range header (served as 200 with the whole file); raises
    :class:`_Unsatisfiable` for a well-formed single range that lies wholly beyond the file.
    """
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or not spec or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not (first.isdigit() or first == "") or not (last.isdigit() or last == "") or (first == last == ""):
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _Unsatisfiable
        return _Range(max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # syntactically invalid: ignore it (RFC 9110 §14.1.1)
    if start >= size:
        raise _Unsatisfiable
    return _Range(start, min(end, size - 1))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "PaletteWizardISO/1"
    sys_version = ""
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        self.request.settimeout(self.server.socket_timeout)
        with contextlib.suppress(OSError):
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.server.ssl_context is not None:
            # The handshake runs here, in the connection's own thread, so a stalled client never blocks accept.
            self.request = self.server.ssl_context.wrap_socket(self.request, server_side=True)
        self.server.track(self.request, True)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.request, False)

    # Requests are logged by the owner with the token hidden; the stock logger prints the raw request line.
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        log.debug("ISO server: bad request from %s (%s)", self.client_address[0], args[0] if args else "")

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        client = _client_ip(self.client_address)
        name = self.server.owner._resolve(self.path)
        if name is None:
            log.info("ISO server: %s %s → 404 (unknown path)", client, self.command)
            self._empty(404, "Not Found")
            return
        entry = self.server.owner._entry(name)
        if entry is None:  # unpublished while the request was in flight
            self._empty(404, "Not Found")
            return
        try:
            fh = entry.path.open("rb")
        except OSError as exc:
            log.warning("ISO server: cannot open %s: %s", entry.path, exc)
            self._empty(500, "Internal Server Error")
            return
        with fh:
            size = os.fstat(fh.fileno()).st_size
            last_modified = email.utils.formatdate(entry.mtime, usegmt=True)
            wanted: _Range | None = None
            header = self.headers.get("Range")
            if header is not None and self._if_range_matches(entry.etag, last_modified):
                try:
                    wanted = parse_range(header, size)
                except _Unsatisfiable:
                    log.info("ISO server: %s %s %s → 416", client, self.command, name)
                    self.server.owner._count(name, client, 0, started=True)
                    self.server.owner._count(name, client, 0, finished=True)
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            start, length = (wanted.start, wanted.length) if wanted else (0, size)
            owner = self.server.owner
            # Counted before the headers leave, so a client that has the headers is already seen.
            owner._count(name, client, 0, started=True)
            self.send_response(206 if wanted else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Last-Modified", last_modified)
            self.send_header("ETag", entry.etag)
            if wanted:
                self.send_header("Content-Range", f"bytes {wanted.start}-{wanted.end}/{size}")
            self.end_headers()
            log.info(
                "ISO server: %s %s %s %s",
                client,
                self.command,
                name,
                f"bytes {start}-{start + length - 1}" if wanted else "whole file",
            )
            try:
                if not head and length:
                    self.wfile.flush()
                    self._send_body(fh, start, length, name, client)
            except OSError as exc:
                # The reader went away (a BMC aborts range reads freely); the connection cannot be reused.
                log.info("ISO server: %s stopped reading %s: %s", client, name, exc)
                self.close_connection = True
            finally:
                owner._count(name, client, 0, finished=True)

    def _if_range_matches(self, etag: str, last_modified: str) -> bool:
        condition = self.headers.get("If-Range")
        return condition is None or condition.strip() in (etag, last_modified)

    def _send_body(self, fh: io.BufferedReader, offset: int, length: int, name: str, client: str) -> None:
        owner = self.server.owner
        sock = self.request
        end = offset + length
        if self.server.ssl_context is None and hasattr(os, "sendfile"):
            while offset < end:
                # socket.sendfile handles the socket timeout (EAGAIN on a timed-out socket) around os.sendfile.
                sent = sock.sendfile(fh, offset, min(SENDFILE_CHUNK, end - offset))
                if sent == 0:
                    raise ConnectionError("file ended early or the client closed the connection")
                offset += sent
                owner._count(name, client, sent)
            return
        fh.seek(offset)
        buffer = bytearray(READ_CHUNK)
        view = memoryview(buffer)
        while offset < end:
            n = fh.readinto(view[: min(READ_CHUNK, end - offset)])
            if not n:
                raise ConnectionError("file ended early")
            sock.sendall(view[:n])
            offset += n
            owner._count(name, client, n)

    def _empty(self, code: int, text: str) -> None:
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _client_ip(address: Any) -> str:
    host = str(address[0])
    # An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d; BMCs are known by their IPv4 address.
    with contextlib.suppress(ValueError):
        ip = ipaddress.ip_address(host)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
    return host


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # stop() cuts connections itself; a thread stuck on a dead peer must not block exit
    block_on_close = False
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        family: socket.AddressFamily,
        owner: IsoServer,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.address_family = family
        self.owner = owner
        self.ssl_context = ssl_context
        self.socket_timeout = SOCKET_TIMEOUT
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall on a machine without DNS.
        if self.address_family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A failed TLS handshake or a reset connection is routine with BMCs; the stock handler prints a traceback.
        exc = sys.exc_info()[1]
        log.debug("ISO server: connection from %s ended: %s", _client_ip(client_address), type(exc).__name__)

    def track(self, conn: socket.socket, opened: bool) -> None:
        with self._conns_lock:
            if opened:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)
        self.owner._touch()

    @property
    def connections(self) -> int:
        with self._conns_lock:
            return len(self._conns)

    def cut_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")


def _is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")  # noqa: S104 - recognising a wildcard, not binding one


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class IsoServer:
    """Serves published files under ``http(s)://host:port/<token>/<name>``; counts bytes per file and client.

    ``bind`` is the local address to listen on; ``advertise`` the host name or address put in URLs (BMCs may need
    a name or a NAT address rather than the bind address; required when binding a wildcard address). The socket is
    bound at construction, so ``url_base`` and ``publish`` work before ``start``.
    """

    def __init__(
        self,
        bind: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        advertise: str = "",
        token: str | None = None,
    ) -> None:
        if _is_wildcard(bind) and not advertise:
            raise ValueError("binding a wildcard address needs an advertised host name or address for the URLs")
        if token is not None and not _TOKEN.fullmatch(token):
            raise ValueError("an ISO server token is 16 or more URL-safe characters")
        # A resumed run passes the token of the run it resumes, so URLs already handed to BMCs keep working.
        self._token = token if token is not None else secrets.token_urlsafe(24)
        # The token is a credential for the files: mask it wherever the run's text is redacted.
        REDACTOR.add(self._token)
        self._lock = threading.Lock()
        self._files: dict[str, _Published] = {}
        self._version = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        host = bind or "0.0.0.0"  # noqa: S104 - only reached with an explicit advertise address
        try:
            self._server = _Server((host, port), family, self, ssl_context)
        except OSError as exc:
            raise WizardError(
                "Cannot start the ISO server",
                f"cannot listen on {_url_host(host)}:{port}: {exc.strerror or exc}",
                remediation="choose another bind address or port for the ISO server (0 picks a free port)",
            ) from exc
        self.bind = host
        self.port = int(self._server.server_port)
        self.scheme = "https" if ssl_context is not None else "http"
        self.advertise = advertise or host

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> Self:
        if self._closed:
            raise RuntimeError("the ISO server was stopped; create a new one")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, name="iso-server"
            )
            self._thread.daemon = True
            self._thread.start()
            log.info("ISO server listening on %s", self.url_base)
        return self

    def stop(self) -> None:
        """Stop accepting, cut every open connection (a BMC mid-read sees the connection close) and release the port."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.cut_connections()
        self._server.server_close()
        log.info("ISO server on %s stopped", self.url_base)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- publishing --------------------------------------------------------------------------------------------
    @property
    def token(self) -> str:
        """The capability token in every URL; a resumed run gives it back to the constructor."""
        return self._token

    @property
    def url_base(self) -> str:
        """``scheme://host:port`` without the token: safe to show and to log."""
        return f"{self.scheme}://{_url_host(self.advertise)}:{self.port}"

    def publish(self, path: Path, name: str | None = None) -> str:
        """Serve ``path`` as ``name`` (default: its file name); returns the URL to give the BMC.

        The same file may be published under several names (one per node, to tell their reads apart even when the
        BMCs share an address behind NAT).
        """
        name = name or path.name
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"{name!r} cannot be a published file name")
        st = path.stat()  # fails early, with the OS's message, for a missing file
        etag = f'"{st.st_size:x}-{int(st.st_mtime_ns):x}"'
        with self._lock:
            previous = self._files.get(name)
            clients = previous.clients if previous is not None and previous.path == path else {}
            self._files[name] = _Published(path, st.st_size, st.st_mtime, etag, clients)
            self._version += 1
        log.info("ISO server: publishing %s as %s (%d bytes)", path, name, st.st_size)
        return f"{self.url_base}/{self._token}/{quote(name)}"

    def unpublish(self, name: str) -> None:
        with self._lock:
            self._files.pop(name, None)
            self._version += 1

    def name_for_url(self, url: str) -> str | None:
        """The published name a URL of this server points at, or None when the URL is not one of ours."""
        parts = urlsplit(url)
        if parts.scheme != self.scheme or parts.port != self.port:
            return None
        return self._resolve(parts.path)

    # -- statistics ---------------------------------------------------------------------------------------------
    def snapshot(self) -> IsoServerSnapshot:
        with self._lock:
            files = {
                name: FileStats(
                    name,
                    f.size,
                    {
                        ip: ClientStats(c.bytes_sent, c.requests, c.active, c.first_seen, c.last_seen)
                        for ip, c in f.clients.items()
                    },
                )
                for name, f in self._files.items()
            }
            version = self._version
        return IsoServerSnapshot(files, self._server.connections, version)

    def served(self, name: str) -> dict[str, int]:
        """Bytes of ``name`` sent so far, per client address."""
        with self._lock:
            f = self._files.get(name)
            return {ip: c.bytes_sent for ip, c in f.clients.items()} if f else {}

    def fetched(self, name: str, clients: set[str] | None = None) -> bool:
        """True once a request for ``name`` arrived (from one of ``clients``, when given): the URL is reachable."""
        with self._lock:
            f = self._files.get(name)
            if f is None:
                return False
            return any(c.requests for ip, c in f.clients.items() if clients is None or ip in clients)

    # -- internals (called from handler threads) ----------------------------------------------------------------
    def _resolve(self, raw_path: str) -> str | None:
        path = raw_path.split("?", 1)[0]
        parts = path.split("/")
        if len(parts) != 3 or parts[0] != "":
            return None
        if not hmac.compare_digest(parts[1].encode(), self._token.encode()):
            return None
        name = unquote(parts[2])
        with self._lock:
            return name if name in self._files else None

    def _entry(self, name: str) -> _Published | None:
        with self._lock:
            return self._files.get(name)

    def _count(self, name: str, client: str, sent: int, *, started: bool = False, finished: bool = False) -> None:
        now = time.time()
        with self._lock:
            f = self._files.get(name)
            if f is None:
                return
            c = f.clients.get(client)
            if c is None:
                c = f.clients[client] = _Client(first_seen=now)
            c.bytes_sent += sent
            c.last_seen = now
            if started:
                c.requests += 1
                c.active += 1
            if finished:
                c.active -= 1
            self._version += 1

    def _touch(self) -> None:
        with self._lock:
            self._version += 1


def _target_host_port(target: str) -> tuple[str, int]:
    if "://" in target:
        parts = urlsplit(target)
        default = 443 if parts.scheme == "https" else 80
        return parts.hostname or "", parts.port or default
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(target.strip("[]"))
        return target.strip("[]"), 443
    host, sep, port = target.rpartition(":")
    if sep and port.isdigit():
        return host.strip("[]"), int(port)
    return target, 443


def route_source(target: str) -> str:
    """The local address the OS would use to reach ``target`` (a host, ``host:port`` or URL).

    A UDP socket's ``connect`` only selects a route and a source address; no packet is sent.
    """
    host, port = _target_host_port(target)
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_UDP)
    # IPv4 first: most BMC networks are IPv4 only, and a name with both records is usually reached over IPv4.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect(sockaddr)
        return _client_ip(s.getsockname())


def choose_bind_address(targets: list[str]) -> str:
    """The local address the OS routes to most of ``targets`` (BMC addresses), to bind the ISO server on.

    Shown to the operator, who may override it (a NAT or a multi-homed jump host can need another address).
    Raises :class:`WizardError` when a target does not resolve or has no route.
    """
    if not targets:
        raise ValueError("no targets to route to")
    sources: Counter[str] = Counter()
    for target in targets:
        try:
            sources[route_source(target)] += 1
        except OSError as exc:
            raise WizardError(
                "No route to the BMC",
                f"this machine has no route to {target}: {exc.strerror or exc}",
                remediation="check the BMC address and this machine's network, or set the ISO server address",
            ) from exc
    # Most common source address; ties go to the one seen first (Counter keeps insertion order).
    return sources.most_common(1)[0][0]
