"""The HTTPS server the lab's endpoints share (a node's Local UI, the system console at the VIP).

A threading HTTP server whose TLS handshake runs in each connection's own thread (a stalled client never blocks
``accept``), whose ``stop`` cuts open keep-alive connections and joins every thread, and which restarts on the
port it first bound, as a rebooting node comes back at the same address.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import ssl
import threading
from abc import ABC, abstractmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.05  # how quickly serve_forever notices shutdown()


class TLSHTTPServer(ThreadingHTTPServer):
    # Non-daemon handler threads so server_close() joins them: stop() returns only when every thread has ended.
    daemon_threads = False
    block_on_close = True

    def __init__(
        self,
        address: tuple[str, int],
        context: ssl.SSLContext,
        handler: type[BaseHTTPRequestHandler],
        *,
        socket_timeout: float,
        label: str,
    ) -> None:
        self.ssl_context = context
        self.socket_timeout = socket_timeout
        self.label = label
        self._conns: set[ssl.SSLSocket] = set()
        self._conns_lock = threading.Lock()
        self._closing = False
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on a machine without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.socket_timeout)
        # Headers and body leave in separate writes; without NODELAY, Nagle and delayed ACKs add ~40 ms to each.
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        except OSError:
            return
        with self._conns_lock:
            if self._closing:
                tls.close()
                return
            self._conns.add(tls)
        try:
            tls.do_handshake()
            handler: Any = self.RequestHandlerClass
            handler(tls, client_address, self)
        except OSError as exc:  # includes SSLError and timeouts
            log.debug("%s: connection from %s ended: %s", self.label, client_address, exc)
        finally:
            with self._conns_lock:
                self._conns.discard(tls)
            tls.close()

    def close_connections(self) -> None:
        with self._conns_lock:
            self._closing = True
            conns = list(self._conns)
        for conn in conns:
            # The plain socket's shutdown: SSLSocket.shutdown would drop its SSL object under a reading thread.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)


class BackgroundServer(ABC):
    """Runs a :class:`TLSHTTPServer` on a thread; ``port=0`` picks a free port, kept across restarts.

    ``netns``: the Linux network namespace to listen in (a lab node's own network); the listening socket is made
    there, so ``host`` is an address of that namespace.
    """

    def __init__(self, *, host: str, port: int, label: str, netns: str | None = None) -> None:
        self.host = host
        self.netns = netns
        self._port = port
        self.label = label
        self._server: TLSHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @abstractmethod
    def _make_server(self, address: tuple[str, int]) -> TLSHTTPServer: ...

    def _started(self) -> None:  # noqa: B027 - an optional hook
        """Called once listening (under the lock)."""

    def _stopping(self) -> None:  # noqa: B027 - an optional hook
        """Called before the server stops accepting."""

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError(f"{self.label} has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self) -> Self:
        with self._lock:
            if self._server is not None:
                raise RuntimeError(f"{self.label} is already running")
            address = (self.host, self._port)
            if self.netns is None:
                server = self._make_server(address)
            else:
                from wizard.lab.netns import run_in  # Linux only; loaded by labs that use namespaces

                server = run_in(self.netns, lambda: self._make_server(address))
            self._port = int(server.server_address[1])
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, name=self.label, daemon=True
            )
            thread.start()
            self._server, self._thread = server, thread
            self._started()
            log.debug("%s listening on %s", self.label, self.url)
            return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, cut open connections and wait for every thread of this server to end."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        self._stopping()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
