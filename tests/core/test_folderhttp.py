"""The ``/folder`` HTTP plumbing against a small local HTTP/1.1 server that misbehaves on cue: a kept-alive
connection it closed while idle, an answer before the body is read, a body that is cut short."""

from __future__ import annotations

import contextlib
import io
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled
from wizard.providers.vsphere.folderhttp import FileChanged, FolderConnection


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    """Answers each request 201 with keep-alive. ``close_after`` closes the connection silently after that many
    answers on it (an idle timeout) and sets ``closed``; ``drop_on_reuse`` closes a connection when a second request
    arrives on it, unanswered (the idle timeout striking just as the request came); ``refuse_puts_over`` answers a
    bigger PUT 507 after its headers and closes."""

    close_after: int = 0
    drop_on_reuse: bool = False
    refuse_puts_over: int = -1
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    closed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        answered = 0
        with conn, reader:
            while True:
                line = reader.readline()
                if not line:
                    return
                method, path, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (h := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = h.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                if self.drop_on_reuse and answered:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
                    return
                if method == "PUT" and 0 <= self.refuse_puts_over < length:
                    conn.sendall(
                        b"HTTP/1.1 507 Insufficient Storage\r\nContent-Length: 8\r\nConnection: close\r\n\r\nno space"
                    )
                    conn.shutdown(socket.SHUT_WR)
                    self.seen.append(Seen(method, path, headers, b""))
                    return
                body = reader.read(length) if method != "HEAD" else b""
                self.seen.append(Seen(method, path, headers, body))
                if len(body) < length:
                    return
                conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
                answered += 1
                if self.close_after and answered >= self.close_after:
                    conn.close()  # without "Connection: close": the client finds out on its next request
                    self.closed.set()
                    return

    def close(self) -> None:
        # Closing alone leaves the socket listening in the kernel while accept() blocks on it: its port went back
        # to the pool and a later test's server on the same port shared its connections with this one. Shutting it
        # down wakes accept(); only then is it closed.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self._acceptor.join(5)
        self.listener.close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def _client(server: Server) -> FolderConnection:
    return FolderConnection("http", "127.0.0.1", server.port, cookie=("vmware_soap_session", "abc"), ssl_context=None)


def _put(client: FolderConnection, data: bytes, **kw: object) -> tuple[int, int, list[int]]:
    seen: list[int] = []
    args: dict[str, object] = {
        "changed": lambda: None,
        "cancel": CancelToken(),
        "on_progress": seen.append,
        "every": 64 * 1024,
    }
    args.update(kw)
    reply, sent = client.put_file("/folder/a.iso?dsName=x", io.BytesIO(data), len(data), **args)  # type: ignore[arg-type]
    return reply.status, sent, seen


def test_small_requests_share_one_connection_and_carry_the_cookie(server: Server) -> None:
    client = _client(server)
    assert client.request("PUT", "/folder/a.json", b"{}").status == 201
    assert client.request("GET", "/folder/a.json").body == b"ok"
    data = b"x" * 300_000
    status, sent, progress = _put(client, data)
    client.close()
    assert status == 201 and sent == len(data) and server.connections == 1
    assert [s.method for s in server.seen] == ["PUT", "GET", "PUT"]
    assert all(s.headers["cookie"] == "vmware_soap_session=abc" for s in server.seen)
    assert server.seen[2].body == data and server.seen[2].headers["content-length"] == str(len(data))
    assert progress == sorted(progress) and progress[-1] == len(data) and len(progress) >= len(data) // (64 * 1024)


def test_a_connection_the_server_closed_while_idle_is_not_used(server: Server) -> None:
    server.close_after = 1
    client = _client(server)
    assert client.request("GET", "/folder/a.json").status == 201
    assert server.closed.wait(5)
    server.closed.clear()
    assert client.request("HEAD", "/folder/a.json").status == 201  # noticed before sending: a fresh connection
    assert server.closed.wait(5)
    data = b"y" * 200_000
    status, sent, _ = _put(client, data)
    client.close()
    assert status == 201 and sent == len(data)
    assert server.connections == 3 and server.seen[-1].body == data and len(server.seen) == 3


@pytest.mark.parametrize("size", [100, 200_000, 3_000_000])
def test_a_connection_closed_as_the_request_arrives_is_retried_fresh(server: Server, size: int) -> None:
    """The race the check before sending cannot see: the requests are idempotent, so each is sent again, once."""
    server.drop_on_reuse = True
    client = _client(server)
    assert client.request("GET", "/folder/a.json").status == 201
    assert client.request("HEAD", "/folder/a.json").status == 201  # dropped on the reused connection, sent again
    data = b"y" * size
    status, sent, progress = _put(client, data)  # dropped again; the body starts over on a fresh connection
    client.close()
    assert status == 201 and sent == len(data) and server.seen[-1].body == data
    assert server.connections == 3 and progress == sorted(set(progress)) and progress[-1] == size


def test_an_answer_before_the_body_is_read_is_returned(server: Server) -> None:
    server.refuse_puts_over = 1000
    client = _client(server)
    status, sent, _ = _put(client, b"z" * 8_000_000)
    assert status == 507 and sent < 8_000_000


def test_a_file_that_shrinks_or_changes_is_never_sent_whole(server: Server) -> None:
    client = _client(server)
    data = b"a" * 500_000
    with pytest.raises(FileChanged):  # the file ended early: no short body passed off as whole
        client.put_file(
            "/folder/a.iso",
            io.BytesIO(data[:100_000]),
            len(data),
            changed=lambda: None,
            cancel=CancelToken(),
            on_progress=lambda _: None,
            every=65536,
        )
    with pytest.raises(FileChanged) as err:  # changed before the last buffer: that buffer never goes out
        _put(client, data, changed=lambda: len(data) + 1)
    assert err.value.now == len(data) + 1
    assert all(len(s.body) < len(data) for s in server.seen)


def test_cancel_stops_between_buffers(server: Server) -> None:
    client = _client(server)
    cancel = CancelToken()

    def cancel_at_first(done: int) -> None:
        cancel.cancel("test")

    with pytest.raises(Cancelled):
        _put(client, b"c" * 2_000_000, cancel=cancel, on_progress=cancel_at_first)
