"""The fake MAAS region's HTTP side: the API routes on a threaded server, TLS optional (see :mod:`wizard.lab.maas`
for the API it follows and the state behind it)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import socketserver
import ssl
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, cast
from urllib.parse import parse_qs, urlsplit

from wizard.lab.maas import API_VERSION, MAAS_VERSION, MAX_BODY, ApiError, MaasState, Status
from wizard.lab.multipart import MultipartError, PartInfo, boundary_from_content_type, parse_multipart

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.05

# ---------------------------------------------------------------------------------------------------------------
# HTTP


class _FieldSink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        if len(self.data) + len(data) > MAX_BODY:
            raise MultipartError("form field too large")
        self.data.extend(data)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "maas-regiond-lab"
    sys_version = ""

    @property
    def maas(self) -> _Server:
        return cast(_Server, self.server)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("maas-lab %s", format % args)

    def _read_form(self) -> dict[str, list[str]]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "Request body too large.")
        ctype = self.headers.get("Content-Type", "")
        if not length:
            return {}
        if ctype.lower().startswith("multipart/form-data"):
            sinks: list[tuple[PartInfo, _FieldSink]] = []

            def sink_for(info: PartInfo) -> _FieldSink:
                sink = _FieldSink()
                sinks.append((info, sink))
                return sink

            try:
                parse_multipart(self.rfile, boundary_from_content_type(ctype), length, sink_for)
            except MultipartError as exc:
                self.close_connection = True
                raise ApiError(400, f"Malformed multipart body: {exc}") from exc
            form: dict[str, list[str]] = {}
            for info, sink in sinks:
                form.setdefault(info.name, []).append(sink.data.decode("utf-8", "replace"))
            return form
        raw = self.rfile.read(length)
        return parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        if isinstance(body, str):
            payload, ctype = body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            payload, ctype = json.dumps(body).encode("utf-8"), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        faults = self.maas.state.http_faults
        if (fault := faults.take()) is not None:  # the http-5xx knob: answered before anything is done
            self.close_connection = True  # the body is not read
            self._send(fault, faults.message(fault))
            return
        try:
            form = self._read_form() if self.command in ("POST", "PUT") else {}
            status, body = self.maas.route(
                self.command, url.path, parse_qs(url.query, keep_blank_values=True), form, self.headers
            )
        except ApiError as err:
            self._send(err.status, err.message, err.headers)
        except (ConnectionError, TimeoutError, ssl.SSLError) as exc:
            log.debug("maas-lab: connection lost during %s %s: %s", self.command, url.path, exc)
            self.close_connection = True
        except Exception:
            log.exception("maas-lab: %s %s failed", self.command, url.path)
            self.close_connection = True
            self._send(500, "Internal server error in the MAAS lab.")
        else:
            self._send(status, body)


class _Server(ThreadingHTTPServer):
    """Threads per connection; TLS (when asked) handshakes in the connection's thread, never in ``accept``."""

    daemon_threads = False
    block_on_close = True

    def __init__(
        self, address: tuple[str, int], state: MaasState, prefix: str, tls: ssl.SSLContext | None, timeout: float
    ) -> None:
        self.state = state
        self.prefix = prefix  # e.g. "/MAAS/api/2.0/"
        self.tls = tls
        self.socket_timeout = timeout
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._closing = False
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on a machine without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        conn: socket.socket = request
        conn.settimeout(self.socket_timeout)
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        except OSError:
            return
        with self._conns_lock:
            if self._closing:
                conn.close()
                return
            self._conns.add(conn)
        try:
            if isinstance(conn, ssl.SSLSocket):
                conn.do_handshake()
            handler: Any = self.RequestHandlerClass
            handler(conn, client_address, self)
        except OSError as exc:
            log.debug("maas-lab: connection from %s ended: %s", client_address, exc)
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            conn.close()

    def close_connections(self) -> None:
        with self._conns_lock:
            self._closing = True
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)

    # -- routing ------------------------------------------------------------------------------------------
    def route(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        form: Mapping[str, list[str]],
        headers: Any,
    ) -> tuple[int, Any]:
        if not path.startswith(self.prefix):
            raise ApiError(404, f"Unknown API path: {path}")
        rest = path[len(self.prefix) :]
        if rest == "version/" and method == "GET":
            return 200, {
                "capabilities": ["authenticate-api", "networks-management", "static-ipaddresses", "devices-management"],
                "version": MAAS_VERSION,
                "subversion": "",
            }
        user = self.state.authenticate(headers.get("Authorization"))
        op = (query.get("op") or form.get("op") or [""])[-1]
        comment = (form.get("comment") or [""])[-1]
        state = self.state
        api = self.prefix

        def unknown() -> ApiError:
            return ApiError(400, f"Unrecognised signature: method={method} op={op or None}")

        if rest == "users/":
            if method == "GET" and op == "whoami":
                return 200, user.to_json()
            raise unknown()
        if rest == "machines/":
            if method == "GET" and not op:
                return 200, [m.to_json(api) for m in state.list_machines(user, query)]
            if method == "GET" and op == "list_allocated":
                mine = state.list_machines(user, {})
                return 200, [m.to_json(api) for m in mine if m.owner == user.username and m.status is Status.ALLOCATED]
            if method == "POST" and op == "allocate":
                return 200, state.allocate(user, form).to_json(api)
            raise unknown()
        m = re.fullmatch(r"machines/([^/]+)/", rest)
        if m is None:
            raise ApiError(404, f"Unknown API path: {path}")
        system_id = m.group(1)
        if method == "GET":
            if not op:
                return 200, state.read(system_id, user).to_json(api)
            if op == "power_parameters":
                return 200, state.power_parameters(system_id, user)
            if op == "query_power_state":
                return 200, {"state": state.query_power_state(system_id, user)}
        elif method == "POST":
            if op == "release":
                return 200, state.release(system_id, user, comment).to_json(api)
            if op == "deploy":
                return 200, state.deploy(system_id, user, form).to_json(api)
            if op == "power_on":
                return 200, state.power_on(system_id, user, comment).to_json(api)
            if op == "power_off":
                return 200, state.power_off(system_id, user, comment).to_json(api)
        raise unknown()


class MaasServer:
    """The fake MAAS API on a background thread: ``http://host:port/MAAS`` (``https`` when given a TLS context).

    ``port=0`` picks a free port, kept across restarts. Use as a context manager or call start/stop.
    """

    def __init__(
        self,
        state: MaasState | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        path: str = "/MAAS",
        socket_timeout: float = 30.0,
    ) -> None:
        self.state = state or MaasState()
        self.host = host
        self._port = port
        self.tls = tls
        self.path = "/" + path.strip("/") if path.strip("/") else ""
        self.socket_timeout = socket_timeout
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the MAAS lab server has not been started")
        return self._port

    @property
    def url(self) -> str:
        """What an operator types as the MAAS URL, e.g. ``http://127.0.0.1:5240/MAAS``."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}{self.path}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/{API_VERSION}/"

    def start(self) -> Self:
        with self._lock:
            if self._server is not None:
                raise RuntimeError("the MAAS lab server is already running")
            server = _Server(
                (self.host, self._port), self.state, f"{self.path}/api/{API_VERSION}/", self.tls, self.socket_timeout
            )
            self._port = int(server.server_address[1])
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, name="maas-lab", daemon=True
            )
            thread.start()
            self._server, self._thread = server, thread
        log.debug("MAAS lab listening on %s", self.url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, cut open keep-alive connections and wait for every thread of the server to end."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
