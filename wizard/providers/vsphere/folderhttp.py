"""HTTP/1.1 to vCenter's ``/folder`` on one kept-alive connection, with a streaming PUT for big files.

The standard library's :mod:`http.client` carries the requests: the session cookie authorises them and the session's
TLS context (system trust or the pinned certificate) verifies the peer, exactly as for the SOAP calls. A big body is
sent by :meth:`FolderConnection.put_file`: ``readinto`` one reusable buffer and ``sendall`` a view of it, so no byte is
copied in Python on its way from the page cache to the socket. (A general HTTP client joins, re-slices and copies a
streamed body after every partial send; that cost the ISO upload about 15 % against ``curl -T``. ``sendfile`` was
measured too: on loopback it was a third slower than this loop (the receiver then copies from cold page-cache pages
instead of freshly written socket buffers), and it cannot carry TLS.)

Errors stay raw here (:class:`OSError`, :class:`http.client.HTTPException`); the datastore client translates them.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import select
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from wizard.core.cancel import CancelToken

#: The send buffer: what is read stays in the CPU's first-level cache until it is sent (measured on loopback against
#: vcsim, medians of 10 interleaved 1 GiB runs: 32–64 KiB were on a par with curl's 64 KiB, 128 KiB 10 % and 256 KiB
#: 12 % slower; curl reads and sends 64 KiB at a time too).
BUFFER = 64 * 1024
#: Over TLS each write is also cut into records and encrypted: bigger writes spread that per-call cost (measured the
#: same way: 256 KiB 4 % ahead of 64 KiB, on a par with curl).
BUFFER_TLS = 256 * 1024
#: A response body read for an error message or a sidecar is cut at this size.
MAX_SMALL_BODY = 1024 * 1024

# A connection the server closed while idle shows up as one of these on the next request: retried once, fresh.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
#: A kept-alive connection that fails before this much of a body went out is taken for one the server had closed
#: (the bytes were still in our socket buffer when its reset came back), and the body is sent again on a fresh one.
STALE_WINDOW = 4 * 1024 * 1024


class Readable(Protocol):
    def readinto(self, buffer: bytearray | memoryview, /) -> int | None: ...
    def tell(self) -> int: ...
    def seek(self, offset: int, /) -> int: ...


@dataclass(frozen=True)
class Reply:
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class FileChanged(Exception):
    """The local file's size or modification time changed while it was being sent."""

    def __init__(self, expected: int, now: int) -> None:
        super().__init__(f"{expected} bytes expected, {now} now")
        self.expected = expected
        self.now = now


class FolderConnection:
    """Requests to one vCenter (``scheme://host:port``); not thread-safe (one per job)."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        *,
        cookie: tuple[str, str],
        ssl_context: ssl.SSLContext | None,
        timeout: float = 60.0,
        response_timeout: float = 600.0,
    ) -> None:
        if scheme == "https" and ssl_context is None:
            raise ValueError("an HTTPS connection needs a verified TLS context")
        self.scheme = scheme
        self.host = host
        self.port = port
        self.cookie = f"{cookie[0]}={cookie[1]}"
        self.ssl_context = ssl_context
        self.timeout = timeout
        # How long the server may take to answer once the whole body is sent (it may still be writing it out).
        self.response_timeout = max(timeout, response_timeout)
        self._conn: http.client.HTTPConnection | None = None
        self._body_sent = 0

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is not None and self._conn.sock is not None and _peer_closed(self._conn.sock):
            self.close()  # closed by the server while idle (its keep-alive timeout): no request must meet it
        if self._conn is None:
            if self.scheme == "https":
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self.ssl_context
                )
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def _start(self, method: str, url: str, headers: Mapping[str, str]) -> http.client.HTTPConnection:
        conn = self._connection()
        conn.putrequest(method, url, skip_accept_encoding=True)
        conn.putheader("Cookie", self.cookie)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        return conn

    def _reply(self, conn: http.client.HTTPConnection, *, limit: int = MAX_SMALL_BODY) -> Reply:
        if conn.sock is not None:
            conn.sock.settimeout(self.response_timeout)
        response = conn.getresponse()
        try:
            body = response.read(limit)
            complete = response.isclosed()
        finally:
            if conn.sock is not None:
                conn.sock.settimeout(self.timeout)
        reply = Reply(response.status, response.reason, {k.lower(): v for k, v in response.getheaders()}, body)
        if not complete or response.will_close:
            self.close()  # an unread body or "Connection: close": the next request opens a fresh connection
        return reply

    def request(self, method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Reply:
        """A small request (``url`` is a path with its query). Idempotent only: a kept-alive connection the server
        closed meanwhile is retried once on a fresh one."""
        sent = dict(headers or {})
        if body or method in ("PUT", "POST"):
            sent["Content-Length"] = str(len(body))
        for attempt in (1, 2):
            reused = self._conn is not None and self._conn.sock is not None
            try:
                conn = self._start(method, url, sent)
                if body:
                    conn.send(body)
                return self._reply(conn)
            except _STALE:
                self.close()
                if attempt == 2 or not reused:
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")

    def put_file(
        self,
        url: str,
        source: Readable,
        size: int,
        *,
        changed: Callable[[], int | None],
        cancel: CancelToken,
        on_progress: Callable[[int], None],
        every: int,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Reply, int]:
        """PUTs ``size`` bytes read from ``source`` (at its position); returns the reply and the bytes sent.

        ``on_progress(sent)`` is called about every ``every`` bytes and at the end; the cancel token is checked before
        each buffer. ``changed()`` returns the file's size when it differs from what is being sent, else None: it is
        asked before the last buffer goes out (so the server never receives a whole body of a changed file) and
        again after the reply. A server that answers early (refused, no space) and closes is read for its answer.

        The body goes over the kept-alive connection the small requests just used (no second TCP and TLS
        handshake). Should the server have closed it just then, the failure comes within the first bytes: the body
        then starts over, once, on a fresh connection (a whole-file PUT is idempotent; progress never goes back).
        """
        sent_headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream", **(headers or {})}
        origin = source.tell()
        highest = [0]

        def progress(done: int) -> None:
            if done > highest[0]:
                highest[0] = done
                on_progress(done)

        kw: dict[str, Any] = {
            "headers": sent_headers,
            "changed": changed,
            "cancel": cancel,
            "on_progress": progress,
            "every": every,
        }
        reused = self._conn is not None and self._conn.sock is not None
        self._body_sent = 0
        try:
            return self._put_once(url, source, size, **kw)
        except _STALE:
            if not reused or self._body_sent > STALE_WINDOW:
                raise
        source.seek(origin)
        return self._put_once(url, source, size, **kw)

    def _put_once(
        self,
        url: str,
        source: Readable,
        size: int,
        *,
        headers: Mapping[str, str],
        changed: Callable[[], int | None],
        cancel: CancelToken,
        on_progress: Callable[[int], None],
        every: int,
    ) -> tuple[Reply, int]:
        sent = 0
        try:
            conn = self._start("PUT", url, headers)
            sock = conn.sock
            assert sock is not None
            wanted = BUFFER_TLS if self.scheme == "https" else BUFFER
            buf = bytearray(max(1, min(wanted, every, size)))  # progress and cancel come at least every `every`
            whole = len(buf)
            view = memoryview(buf)
            next_report = every
            while sent < size:
                cancel.raise_if_cancelled()
                # This loop runs ~16,000 times a GiB: the full buffer itself is read into and sent, no slices.
                n = source.readinto(buf if size - sent >= whole else view[: size - sent])
                if not n:
                    raise FileChanged(size, sent)  # shorter than it was: never send a short body as if whole
                if sent + n >= size and (now := changed()) is not None:
                    raise FileChanged(size, now)
                try:
                    sock.sendall(buf if n == whole else view[:n])
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                    early = self._early_reply(conn)
                    if early is None:
                        raise
                    self.close()
                    return early, sent
                sent += n
                self._body_sent = sent
                if sent >= next_report or sent == size:
                    on_progress(sent)
                    next_report = sent + every
            reply = self._reply(conn)
        except BaseException:
            self.close()
            raise
        if (now := changed()) is not None:
            self.close()
            raise FileChanged(size, now)
        return reply, sent

    def _early_reply(self, conn: http.client.HTTPConnection) -> Reply | None:
        """The answer of a server that stopped reading the body (an error status), when one is there to read."""
        with contextlib.suppress(OSError, http.client.HTTPException):
            if conn.sock is not None:
                conn.sock.settimeout(min(self.timeout, 5.0))
            response = conn.getresponse()
            body = response.read(MAX_SMALL_BODY)
            return Reply(response.status, response.reason, {k.lower(): v for k, v in response.getheaders()}, body)
        return None


def _peer_closed(sock: socket.socket) -> bool:
    """True when an idle kept-alive socket is readable: the server closed it (or sent what nobody asked for)."""
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])  # Windows
    except (OSError, ValueError):
        return True


def file_changed_check(fd: int, size: int, mtime_ns: int) -> Callable[[], int | None]:
    """``changed()`` for :meth:`FolderConnection.put_file`: the file's size now when its size or mtime moved."""

    def changed() -> int | None:
        st = os.fstat(fd)
        return None if st.st_size == size and st.st_mtime_ns == mtime_ns else st.st_size

    return changed


def is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError | socket.timeout)
