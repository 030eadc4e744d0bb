"""The Local UI HTTPS server of a simulated appliance node (port 5080 on a real one).

Routing goes through the published spec of the release the node plays (:mod:`wizard.lab.versions`): a path that
spec lacks is a 404, a spec operation the lab does not simulate is a 501, and request bodies are validated against
the spec before a handler sees them. Error bodies take the shape the spec gives for that operation and status (see
:func:`error_body`). The log endpoints serve :class:`~wizard.lab.nodelogs.NodeLogs`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from wizard.appliance.localui_spec import Operation, SpecViolation, UnknownOperation
from wizard.lab import cluster, clusterinfo, network, registrysync
from wizard.lab import registry as lab_registry
from wizard.lab import upgrade as lab_upgrade
from wizard.lab.certs import NodeCertificate
from wizard.lab.links import LinkRegistry
from wizard.lab.multipart import (
    MultipartError,
    Readable,
    ThrottledReader,
    boundary_from_content_type,
    parse_multipart,
)
from wizard.lab.node import LocalUIError, NodeState, Session, http_date
from wizard.lab.nodelogs import NodeLogs
from wizard.lab.tlsserver import BackgroundServer, TLSHTTPServer
from wizard.lab.uploads import UploadReceiver

log = logging.getLogger(__name__)

# Like Go's net/http: an unread request body up to this size is drained so the connection can be reused; a larger
# one makes the server close the connection after replying.
DRAIN_LIMIT = 256 * 1024
MAX_JSON_BODY = 1 << 20
UPLOAD_MESSAGE = "Uploaded content successfully"


@dataclass
class Reply:
    status: int
    body: Any = None  # None: no body at all; bytes: sent as is with ``content_type``
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class _Request:
    handler: _Handler
    op: Operation
    path: str
    query: dict[str, Any]
    node: NodeState
    registry: LinkRegistry
    logs: NodeLogs
    session: Session | None = None

    def json_body(self) -> Any:
        return self.handler.read_json(self.op, self.path)

    @property
    def user(self) -> Session:
        assert self.session is not None, "route registered as public but needs a session"
        return self.session


Route = Callable[[_Request], Reply]
_ROUTES: dict[tuple[str, str], Route] = {}
_PUBLIC: set[tuple[str, str]] = set()
#: What a release before 4.9.14 served without a token (:mod:`wizard.lab.versions`).
_UNGUARDED = {("POST", "/v1/edge-mgmt/edgehosts/current/actions/upload-content")}


def _route(method: str, template: str, *, public: bool = False) -> Callable[[Route], Route]:
    def register(fn: Route) -> Route:
        _ROUTES[(method, template)] = fn
        if public:
            _PUBLIC.add((method, template))
        return fn

    return register


def implemented_operations() -> frozenset[tuple[str, str]]:
    """(METHOD, template) of every operation the lab simulates."""
    return frozenset(_ROUTES)


def error_body(
    op: Operation | None, status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Any:
    """The error body the spec allows for ``op`` and ``status``.

    Where the spec's response (or ``default``) is ``apiError`` — a bare string — the body is the message as a JSON
    string; where the documented response has no schema there is no body; otherwise a v1Error object.
    """
    if op is not None:
        resp = op.response(status)
        if resp is not None and resp.status_key != "undocumented":
            if resp.schema is None:
                return None
            if _schema_type(op, resp.schema) == "string":
                return message
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return body


def _schema_type(op: Operation, schema: Any) -> Any:
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        schema = op.spec.definition(ref.removeprefix("#/definitions/"))
    return schema.get("type")


# -- Routes --------------------------------------------------------------------------------------------------------


@_route("GET", "/v1/ping", public=True)
def _ping(req: _Request) -> Reply:
    return Reply(200, {"msg": "pong"})


@_route("POST", "/v1/users/default/login", public=True)
def _login(req: _Request) -> Reply:
    body = req.json_body() or {}
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not username or not isinstance(password, str):
        raise LocalUIError(400, "BadRequest", "username and password are required")
    # Bad credentials are a 401 as on a real node, although the spec lists only 400 and 500 here; the body is a
    # v1Error object, the spec's common error shape (its 400 schema, v1BadRequest, constrains nothing).
    session, first_login = req.node.login(username, password, extended=bool(req.query["extendedSession"]))
    headers = {}
    if req.query["setCookie"]:
        max_age = int(session.expires_at - session.issued_at)
        headers["Set-Cookie"] = (
            f"Authorization={session.token}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
        )
    answer: dict[str, Any] = {"Token": {"Authorization": session.token}}
    if first_login is not None:  # a variant leaves the field out
        answer["IsFirstLogin"] = first_login
    return Reply(200, answer, headers)


@_route("POST", "/v1/users/default/logout")
def _logout(req: _Request) -> Reply:
    req.node.logout(req.user)
    return Reply(req.node.variant("localui.write-status")[1])


@_route("POST", "/v1/users/default/token/renewal")
def _renew(req: _Request) -> Reply:
    session = req.node.renew(req.user, extended=bool(req.query["extendedSession"]))
    return Reply(200, {"Authorization": session.token})


@_route("POST", "/v1/users/default/password/reset")
def _reset_password(req: _Request) -> Reply:
    body = req.json_body() or {}
    old, new = body.get("oldPassword"), body.get("newPassword")
    if not isinstance(old, str) or not isinstance(new, str):
        raise LocalUIError(400, "BadRequest", "oldPassword and newPassword are required")
    req.node.reset_password(req.user.username, old, new)
    return Reply(req.node.variant("localui.write-status")[0])


@_route("GET", "/v1/users/current")
def _current_user(req: _Request) -> Reply:
    return Reply(200, req.node.user_spec(req.user.username))


@_route("GET", "/v1/edge-mgmt/edgehosts/current")
def _host_info(req: _Request) -> Reply:
    return Reply(200, req.node.host_info())


@_route("GET", "/v1/edge-mgmt/edgehosts/current/userdata")
def _get_user_data(req: _Request) -> Reply:
    return Reply(200, req.node.get_user_data())


@_route("PUT", "/v1/edge-mgmt/edgehosts/current/userdata")
def _put_user_data(req: _Request) -> Reply:
    return Reply(200, req.node.put_user_data(req.json_body() or {}))


@_route("POST", "/v1/edge-mgmt/edgehosts/current/userdata")
def _post_user_data(req: _Request) -> Reply:
    # The spec gives POST the same body and meaning as PUT, answered 201.
    return Reply(201, req.node.put_user_data(req.json_body() or {}))


@_route("GET", "/v1/edge-mgmt/edgehosts/current/configurations")
def _get_configurations(req: _Request) -> Reply:
    return Reply(200, req.node.get_configurations())


@_route("PUT", "/v1/edge-mgmt/edgehosts/current/configurations")
def _put_configurations(req: _Request) -> Reply:
    return Reply(200, req.node.put_configurations(req.json_body() or {}))


@_route("GET", "/v1/edge-mgmt/edgehosts/current/configurations/status")
def _configuration_status(req: _Request) -> Reply:
    return Reply(200, req.node.configuration_state())


@_route("GET", "/v1/edge-mgmt/settings")
def _settings(req: _Request) -> Reply:
    return Reply(200, req.node.settings())


@_route("POST", "/v1/edge-mgmt/edgehosts/current/link/generate-token")
def _generate_link_token(req: _Request) -> Reply:
    return Reply(200, req.registry.generate_token(req.node))


@_route("POST", "/v1/edge-mgmt/edgehosts/current/link")
def _link(req: _Request) -> Reply:
    body = req.json_body() or {}
    token = body.get("token")
    if not isinstance(token, str) or not token.strip():
        raise LocalUIError(400, "BadRequest", "the link token is required")
    return Reply(200, req.registry.link(req.node, token))


@_route("GET", "/v1/edge-mgmt/edgehosts/current/link/status")
def _link_status(req: _Request) -> Reply:
    return Reply(200, req.registry.status(req.node))


@_route("POST", "/v1/edge-mgmt/edgehosts/current/unlink")
def _unlink(req: _Request) -> Reply:
    return Reply(200, req.registry.unlink(req.node, str(req.query["peerId"])))


@_route("POST", "/v1/edge-mgmt/edgehosts/current/actions/upload-content")
def _upload_content(req: _Request) -> Reply:
    handler = req.handler
    try:
        boundary = boundary_from_content_type(handler.headers.get("Content-Type", ""))
    except MultipartError as exc:
        raise LocalUIError(400, "BadRequest", str(exc)) from exc
    length = handler.declared_length()
    if length is None:
        raise LocalUIError(411, "LengthRequired", "upload-content needs a Content-Length")
    receiver = UploadReceiver(req.node.content_dir)
    # From here the body is being consumed; only a complete parse leaves the connection reusable.
    handler.body_settled = True
    body: Readable = handler.rfile
    rate = req.node.upload_rate
    if rate is not None and rate > 0:  # the slow-upload knob: a capped link between the client and the node
        body = ThrottledReader(handler.rfile, rate, handler.lab_server.closing)
    try:
        parse_multipart(body, boundary, length, receiver.sink_for)
    except MultipartError as exc:
        receiver.discard()
        handler.close_connection = True
        raise LocalUIError(400, "BadRequest", f"malformed multipart body: {exc}") from exc
    except BaseException:
        receiver.discard()
        handler.close_connection = True
        raise
    if "uploadFile" not in receiver.sinks:
        receiver.discard()
        raise LocalUIError(400, "BadRequest", "the form field uploadFile is required")
    if req.node.take_upload_error():  # fault knob: the body arrived, storing it failed
        receiver.discard()
        raise LocalUIError(500, "InternalServerError", "failed to store the uploaded content: no space left on device")
    content = receiver.commit(req.node.clock())
    req.node.record_upload(content)
    lab_upgrade.offer(req.node, content)  # a newer release's bundle on a cluster member: an update archive
    if lab_registry.import_upload(req.node, content):  # a pack bundle lands in the running cluster's registry
        pack = lab_registry.pack_identity(content.file_name)
        if pack is not None:
            registrysync.record(req.node, pack[0], pack[1], content.size)
    status = req.node.variant("localui.upload-status")
    return Reply(status, {"message": UPLOAD_MESSAGE, "uploadPath": str(content.path)})


@_route("GET", "/v1/edge-mgmt/edgehosts/current/uploaded-content/details")
def _uploaded_content_details(req: _Request) -> Reply:
    return Reply(200, req.node.uploaded_content_details())


@_route("GET", "/v1/edge-mgmt/clusters/archive/embedded/details")
def _embedded_archive(req: _Request) -> Reply:
    return Reply(200, cluster.archive_details(req.node))


@_route("GET", "/v1/edge-mgmt/clusters/archive/overridden/details")
def _overridden_archive(req: _Request) -> Reply:
    # Only upload-clusterconfig makes an overridden archive, and the lab does not simulate that upload.
    raise LocalUIError(404, "NotFound", "no cluster configuration archive was uploaded to this host")


@_route("GET", "/v1/edge-mgmt/clusters/archive/update/details")
def _update_archive(req: _Request) -> Reply:
    return Reply(200, lab_upgrade.update_details(req.node))


@_route("DELETE", "/v1/edge-mgmt/clusters/archive/update")
def _reject_update(req: _Request) -> Reply:
    return Reply(202, lab_upgrade.reject(req.node))


@_route("PUT", "/v1/edge-mgmt/cluster/{clusterName}")
def _update_cluster(req: _Request) -> Reply:
    name = str(req.op.path_params.get("clusterName") or "")
    return Reply(202, lab_upgrade.apply_configuration(req.node, name, req.json_body() or {}))


@_route("PUT", "/v1/edge-mgmt/cluster/profiles")
def _update_profiles(req: _Request) -> Reply:
    return Reply(202, lab_upgrade.apply_profiles(req.node, req.json_body() or {}))


@_route("GET", "/v1/edge-mgmt/clusters/current/machinepools")
def _machine_pools(req: _Request) -> Reply:
    return Reply(200, clusterinfo.machine_pools(req.node))


@_route("POST", "/v1/edge-mgmt/clusters/current/machinepools")
def _create_pool(req: _Request) -> Reply:
    return Reply(201, clusterinfo.create_pool(req.node, req.registry, req.json_body() or {}))


@_route("PUT", "/v1/edge-mgmt/clusters/current/machinepools/{poolName}")
def _update_pool(req: _Request) -> Reply:
    name = str(req.op.path_params.get("poolName") or "")
    return Reply(200, clusterinfo.update_pool(req.node, req.registry, name, req.json_body() or {}))


@_route("GET", "/v1/edge-mgmt/cluster/certificates")
def _cluster_certificates(req: _Request) -> Reply:
    return Reply(200, clusterinfo.certificate_details(req.node))


@_route("POST", "/v1/edge-mgmt/cluster/profiles/variables/validate")
def _validate_variables(req: _Request) -> Reply:
    return Reply(200, cluster.validate_variables(req.node, req.json_body() or {}))


@_route("POST", "/v1/edge-mgmt/cluster")
def _create_cluster(req: _Request) -> Reply:
    return Reply(202, cluster.create_cluster(req.node, req.registry, req.json_body() or {}))


@_route("GET", "/v1/edge-mgmt/cluster")
def _cluster_configuration(req: _Request) -> Reply:
    return Reply(200, cluster.cluster_configuration(req.node))


@_route("PUT", "/v1/edge-mgmt/cluster/settings")
def _cluster_settings(req: _Request) -> Reply:
    return Reply(202, cluster.update_settings(req.node, req.json_body() or {}))


@_route("GET", "/v1/edge-mgmt/cluster/details")
def _cluster_details(req: _Request) -> Reply:
    return Reply(200, cluster.cluster_details(req.node))


@_route("GET", "/v1/edge-mgmt/events/lifecycle")
def _lifecycle_events(req: _Request) -> Reply:
    return Reply(200, cluster.lifecycle_events(req.node))


@_route("GET", "/v1/edge-mgmt/cluster/applications")
def _cluster_applications(req: _Request) -> Reply:
    return Reply(200, lab_registry.cluster_applications(req.node))


@_route("GET", "/v1/edge-mgmt/cluster/registry/content/details")
def _registry_content(req: _Request) -> Reply:
    return Reply(200, lab_registry.registry_content_details(req.node))


@_route("GET", "/v1/edge-mgmt/cluster/registry/content/sync-status/details")
def _registry_sync_status(req: _Request) -> Reply:
    return Reply(200, registrysync.sync_status(req.node))


@_route("GET", "/v1/edge-mgmt/cluster/registry/health")
def _registry_health(req: _Request) -> Reply:
    return Reply(200, lab_registry.registry_health(req.node))


@_route("POST", "/v1/edge-mgmt/edgehosts/current/generate-logs")
def _generate_logs(req: _Request) -> Reply:
    return Reply(202, req.logs.generate())


@_route("GET", "/v1/edge-mgmt/edgehosts/current/generate-logs-status")
def _generate_logs_status(req: _Request) -> Reply:
    return Reply(200, req.logs.status())


@_route("GET", "/v1/edge-mgmt/edgehosts/current/download-logs")
def _download_logs(req: _Request) -> Reply:
    name, archive = req.logs.download()
    return Reply(
        200, archive, {"Content-Disposition": f'attachment; filename="{name}"'}, content_type="application/x-tar"
    )


@_route("GET", "/v1/edge-mgmt/edgehosts/current/error-logs")
def _error_logs(req: _Request) -> Reply:
    return Reply(200, req.logs.error_events(int(req.query["logCount"])))


@_route("GET", "/v1/edge-mgmt/clusters/current/nodes")
def _cluster_nodes(req: _Request) -> Reply:
    return Reply(200, cluster.cluster_nodes(req.node))


def _network_route(handler: network.Handler) -> Route:
    def route(req: _Request) -> Reply:
        body = req.json_body() if req.op.body_parameter() is not None else None
        status, answer = handler(req.node, req.op.path_params, body)
        return Reply(status, answer)

    return route


# The network configuration API (newer releases), simulated in its own module.
for _key, _handler in network.HANDLERS.items():
    _ROUTES[_key] = _network_route(_handler)


# -- HTTP plumbing -------------------------------------------------------------------------------------------------

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # Go's strconv.ParseBool, which the appliance's server uses
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _parse_query(op: Operation, query: str) -> dict[str, Any]:
    raw = parse_qs(query, keep_blank_values=True)
    out: dict[str, Any] = {}
    for param in op.parameters("query"):
        name = str(param["name"])
        values = raw.get(name)
        if not values or values[0] == "":  # an empty value takes the default, as go-openapi binds it
            if param.get("required"):
                raise LocalUIError(400, "BadRequest", f"query parameter {name} is required")
            out[name] = param.get("default")
            continue
        value = values[0]
        kind = param.get("type")
        if kind == "boolean":
            if value not in _TRUE | _FALSE:
                raise LocalUIError(400, "BadRequest", f"query parameter {name} must be true or false")
            out[name] = value in _TRUE
        elif kind == "integer":
            try:
                out[name] = int(value)
            except ValueError:
                raise LocalUIError(400, "BadRequest", f"query parameter {name} must be an integer") from None
        else:
            out[name] = value
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalUI-lab"
    sys_version = ""

    body_settled = False
    reply_status = 0

    @property
    def lab_server(self) -> _TLSServer:
        return cast(_TLSServer, self.server)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header comes from the node's own (possibly skewed) clock, as a real server's does.
        return http_date(self.lab_server.node.wall_time(timestamp))

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.lab_server.node.name, format % args)

    # -- Request bodies --

    def declared_length(self) -> int | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise LocalUIError(411, "LengthRequired", "chunked request bodies are not supported; send Content-Length")
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        try:
            length = int(value)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise LocalUIError(400, "BadRequest", "invalid Content-Length")
        return length

    def read_json(self, op: Operation, path: str) -> Any:
        length = self.declared_length() or 0
        if length > MAX_JSON_BODY:
            self.close_connection = True
            raise LocalUIError(413, "PayloadTooLarge", f"JSON bodies are limited to {MAX_JSON_BODY} bytes")
        raw = self.rfile.read(length) if length else b""
        self.body_settled = True
        if len(raw) != length:
            self.close_connection = True
            raise LocalUIError(400, "BadRequest", "the request body ended early")
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError as exc:
            raise LocalUIError(400, "BadRequest", f"the request body is not JSON: {exc}") from exc
        try:
            op.spec.validate_request_body(op.method, path, body)
        except SpecViolation as exc:
            raise LocalUIError(400, "BadRequest", "; ".join(exc.errors)) from exc
        return body

    def _settle_body(self) -> None:
        if self.body_settled:
            return
        self.body_settled = True
        try:
            length = self.declared_length() or 0
        except LocalUIError:
            return
        if length <= DRAIN_LIMIT:
            self.rfile.read(length)
        else:
            self.close_connection = True

    # -- Responses --

    def send_reply(self, reply: Reply) -> None:
        self._settle_body()
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, bytes):
            payload = reply.body
        else:
            payload = json.dumps(reply.body).encode("utf-8")
        self.reply_status = reply.status
        self.send_response(reply.status)
        if reply.body is not None:
            self.send_header("Content-Type", reply.content_type)
        if reply.status not in (204, 304):
            self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)

    def send_error_reply(self, op: Operation | None, err: LocalUIError, headers: dict[str, str] | None = None) -> None:
        details = None
        headers = dict(headers or {})
        if err.retry_after is not None:
            seconds = max(1, math.ceil(err.retry_after))
            headers["Retry-After"] = str(seconds)
            details = {"retryAfterSeconds": seconds}
        self.send_reply(Reply(err.status, error_body(op, err.status, err.code, err.message, details), headers))

    # -- Dispatch --

    def _token(self) -> str | None:
        """The session token from where this variant of the appliance reads it: the ``Authorization`` header, the
        cookie of that name (reference §10.3), or either."""
        carrier = self.lab_server.node.variant("localui.token-carrier")
        header = (self.headers.get("Authorization") or "").strip() or None
        cookie = None
        raw = self.headers.get("Cookie")
        if raw:
            jar: SimpleCookie = SimpleCookie()
            with contextlib.suppress(CookieError):
                jar.load(raw)
            morsel = jar.get("Authorization")
            cookie = morsel.value if morsel is not None and morsel.value else None
        if carrier == "header":
            return header
        if carrier == "cookie":
            return cookie
        return header or cookie

    def _stalled(self) -> bool:
        """The stall knob: hold the request unanswered until the stall ends (or the server stops), then hang up."""
        server = self.lab_server
        remaining = server.node.stall_remaining()
        if remaining <= 0:
            return False
        log.debug("%s: stalling %s %s for %.1f s", server.node.name, self.command, self.path, remaining)
        with server.node.lock:
            server.node.stalled_requests += 1
        # Short waits: the stall may be shortened or lifted (``stall(0)``) while a request is held.
        while remaining > 0 and not server.closing.wait(min(remaining, 0.05)):
            remaining = server.node.stall_remaining()
        self.close_connection = True
        return True

    def _dispatch(self) -> None:
        self.body_settled = False
        server = self.lab_server
        url = urlsplit(self.path)
        try:
            # The spec of the release this node plays: a path that release does not serve is a 404.
            op = server.node.profile.spec.operation(self.command, url.path)
        except UnknownOperation as exc:
            if exc.path_known:
                err = LocalUIError(405, "MethodNotAllowed", f"{self.command} is not allowed on {url.path}")
                self.send_error_reply(None, err, {"Allow": ", ".join(exc.allowed)})
            else:
                self.send_error_reply(None, LocalUIError(404, "NotFound", f"no such path: {url.path}"))
            return
        key = (op.method, op.template)
        req = _Request(self, op, url.path, {}, server.node, server.registry, server.logs)
        if self._stalled():
            return
        lab_upgrade.settle(server.node)  # an update whose timeline has run: the node plays the new release now
        if server.node.rebooting_now() or network.unreachable(server.node):
            # Down to apply user data or a network change: the lab's tick closes the listener soon; until then, hang
            # up unanswered.
            self.close_connection = True
            return
        self.reply_status = 0
        fault = server.node.http_faults.take()
        if fault is not None:  # the http-5xx knob: answered before anything is done (the body is not even read)
            self.reply_status = fault
            self.send_error_reply(op, LocalUIError(fault, "ServerError", server.node.http_faults.message(fault)))
            server.logs.audit(None, op.method, url.path, fault)
            return
        try:
            self._answer(req, key, url.query)
        finally:
            # The audit trail names who did what, never a credential (no query string, no body).
            user = req.session.username if req.session is not None else None
            server.logs.audit(user, op.method, url.path, self.reply_status)

    def _answer(self, req: _Request, key: tuple[str, str], query: str) -> None:
        server, op, url_path = self.lab_server, req.op, req.path
        try:
            if server.node.take_error():  # the fault knob: this request fails as a broken server's would
                raise LocalUIError(500, "InternalError", "internal server error (injected by the lab)")
            token = self._token()
            if key in _UNGUARDED and token is None and server.node.profile.unauthenticated_upload:
                pass  # before 4.9.14 an upload needed no token (Security Advisory 016, PE-8523)
            elif key not in _PUBLIC:
                req.session = server.node.authenticate(token)
            route = _ROUTES.get(key)
            if route is None:
                raise LocalUIError(501, "NotImplemented", f"{op.method} {op.template} is not simulated yet")
            req.query = _parse_query(op, query)
            reply = route(req)
        except LocalUIError as err:
            self.send_error_reply(op, err)
        except (ConnectionError, TimeoutError, ssl.SSLError) as exc:
            log.debug("%s: connection lost during %s %s: %s", server.node.name, op.method, url_path, exc)
            self.close_connection = True
        except Exception:
            log.exception("%s: %s %s failed", server.node.name, op.method, url_path)
            self.close_connection = True
            self.send_error_reply(op, LocalUIError(500, "InternalError", "internal error in the simulated node"))
        else:
            self.send_reply(reply)


class _TLSServer(TLSHTTPServer):
    def __init__(
        self,
        address: tuple[str, int],
        context: ssl.SSLContext,
        node: NodeState,
        registry: LinkRegistry,
        logs: NodeLogs,
        *,
        socket_timeout: float,
    ) -> None:
        self.node = node
        self.registry = registry
        self.logs = logs
        self.closing = threading.Event()  # set when the server stops: ends stalls and throttled reads at once
        super().__init__(address, context, _Handler, socket_timeout=socket_timeout, label=f"localui-{node.name}")


class LocalUIServer(BackgroundServer):
    """One node's Local UI over TLS on ``host``; ``port=0`` picks a free port, kept across restarts."""

    def __init__(
        self,
        node: NodeState,
        certificate: NodeCertificate,
        *,
        registry: LinkRegistry | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        socket_timeout: float = 30.0,
        logs: NodeLogs | None = None,
        netns: str | None = None,
    ) -> None:
        """``netns``: the node's network namespace, when the lab gives nodes their own network."""
        super().__init__(host=host, port=port, label=f"localui-{node.name}", netns=netns)
        self.node = node
        self.certificate = certificate
        self.registry = registry or LinkRegistry()
        self.logs = logs or NodeLogs(node)
        self.socket_timeout = socket_timeout

    def _make_server(self, address: tuple[str, int]) -> TLSHTTPServer:
        return _TLSServer(
            address,
            self.certificate.server_context(),
            self.node,
            self.registry,
            self.logs,
            socket_timeout=self.socket_timeout,
        )

    def stop(self, timeout: float = 10.0) -> None:
        server = self._server
        if isinstance(server, _TLSServer):
            server.closing.set()
        super().stop(timeout)

    def _started(self) -> None:
        self.node.port = self._port
        self.registry.register(self.node)

    def _stopping(self) -> None:
        self.registry.set_reachable(self.node, False)
