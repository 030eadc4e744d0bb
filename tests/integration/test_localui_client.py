"""The Local UI client against the lab: pinned TLS, sessions, error translation, and every exchange spec-checked."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.integration.localui_client import response_body
from wizard.appliance import localui_spec
from wizard.appliance.localui import (
    P_LINK,
    P_LINK_TOKEN,
    P_LOGIN,
    P_RENEW,
    RENEW_MARGIN,
    TOKEN_LIFETIME,
    Connector,
    Endpoint,
    LocalUIClient,
    LocalUIError,
    LocalUILoginFailed,
    LocalUIServerError,
    LocalUIUnreachable,
)
from wizard.appliance.localui_spec import LocalUISpec, SpecViolation, UnknownOperation
from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled
from wizard.core.http import DEFAULT_RETRY, RetryPolicy
from wizard.core.trust import TrustChanged, TrustRequest, TrustStore, same_fingerprint
from wizard.lab import Lab, ManualClock

pytestmark = pytest.mark.lab

FAST_RETRY = DEFAULT_RETRY.scaled(0.02)  # the one policy, with waits short enough for a test


@dataclass
class Exchange:
    method: str
    path: str
    status: int  # 0: no answer (transport error)
    authorization: str = field(repr=False, default="")


class SpecCheckingTransport(httpx.BaseTransport):
    """Checks every request body the client sends and every response it receives against the published spec (the
    one of the release the lab plays)."""

    def __init__(self, inner: httpx.BaseTransport, seen: list[Exchange], spec: LocalUISpec | None = None) -> None:
        self.inner = inner
        self.seen = seen
        self.spec = spec or localui_spec.spec()
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        try:
            op = self.spec.operation(method, path)
        except UnknownOperation:
            return self._probe(request)
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            assert "multipart/form-data" in op.consumes, f"{method} {path} does not take multipart"
            assert int(request.headers["content-length"]) > 0 and "transfer-encoding" not in request.headers
        elif ctype.startswith("application/json"):
            self.spec.validate_request_body(method, path, json.loads(request.content))
        else:
            self.spec.validate_request_body(method, path, None)
        auth = request.headers.get("authorization", "")
        assert not auth.lower().startswith("bearer"), "the Local UI wants the bare token"
        try:
            response = self.inner.handle_request(request)
        except httpx.TransportError:
            self._record(Exchange(method, path, 0, auth))
            raise
        response.read()
        self.spec.validate_response(method, path, response.status_code, response_body(response))
        self._record(Exchange(method, path, response.status_code, auth))
        return response

    def _probe(self, request: httpx.Request) -> httpx.Response:
        """A call outside this release's spec: the client may ask (that is how it learns what an appliance has), and
        the only answer the spec allows is a v1Error 404 or 405."""
        response = self.inner.handle_request(request)
        response.read()
        assert response.status_code in (404, 405), f"{request.method} {request.url.path} is outside {self.spec.name}"
        self.spec.validate_definition("v1Error", response_body(response))
        self._record(Exchange(request.method, request.url.path, response.status_code))
        return response

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.seen.append(exchange)

    def close(self) -> None:
        self.inner.close()


@dataclass
class Harness:
    lab: Lab
    clock: ManualClock
    connector: Connector
    seen: list[Exchange]
    asked: list[TrustRequest]

    def endpoint(self, index: int, password: str = "kairos") -> Endpoint:
        node = self.lab.nodes[index]
        return Endpoint(f"node-{index + 1}", "127.0.0.1", "kairos", password, port=node.server.port)

    def calls(self, method: str, path: str) -> list[Exchange]:
        return [e for e in self.seen if e.method == method and e.path == path]


def make_harness(lab: Lab, clock: ManualClock, config_dir: Path) -> Harness:
    seen: list[Exchange] = []
    asked: list[TrustRequest] = []

    def confirm(request: TrustRequest) -> bool:
        asked.append(request)
        return True  # the operator accepts the first-contact fingerprint

    connector = Connector(
        TrustStore(config_dir),
        confirm,
        clock=clock,
        timeout=10.0,
        wrap_transport=lambda inner: SpecCheckingTransport(inner, seen, lab.appliance.spec),
        retry=FAST_RETRY,
    )
    return Harness(lab, clock, connector, seen, asked)


@pytest.fixture
def lab(tmp_path: Path, clock: ManualClock) -> Iterator[Lab]:
    """No background ticker: only the test stops and starts servers, so nothing restarts them behind its back."""
    with Lab(3, tmp_path / "lab", clock, socket_timeout=10.0, tick_interval=None) as started:
        yield started


@pytest.fixture
def harness(lab: Lab, clock: ManualClock, tmp_path: Path) -> Harness:
    return make_harness(lab, clock, tmp_path / "config")


@pytest.fixture
def node0(harness: Harness) -> Iterator[LocalUIClient]:
    with harness.connector.open(harness.endpoint(0)) as c:
        yield c


def test_first_contact_is_confirmed_then_pinned(harness: Harness, lab: Lab) -> None:
    with harness.connector.open(harness.endpoint(0)) as c:
        assert c.ping()
        info = c.host_info()
    assert info.uid == lab.nodes[0].state.uid and info.ip == "127.0.0.1"
    assert len(harness.asked) == 1 and same_fingerprint(harness.asked[0].presented, lab.nodes[0].fingerprint)
    with harness.connector.open(harness.endpoint(0)) as c:  # pinned now: no second question
        c.host_info()
    assert len(harness.asked) == 1
    assert c.first_login is True
    logins = harness.calls("POST", P_LOGIN)
    assert len(logins) == 2 and all(e.status == 200 for e in logins)
    assert all(e.authorization for e in harness.seen if e.path not in (P_LOGIN, "/v1/ping"))


def test_token_is_renewed_before_it_expires(harness: Harness, node0: LocalUIClient, clock: ManualClock) -> None:
    node0.host_info()
    clock.advance(TOKEN_LIFETIME - RENEW_MARGIN - 60)  # 11 min left: still used as is
    node0.host_info()
    assert not harness.calls("POST", P_RENEW)
    clock.advance(120)  # 9 min left: renewed first
    node0.host_info()
    (renewal,) = harness.calls("POST", P_RENEW)
    assert renewal.status == 200
    first, last = harness.seen[1].authorization, harness.seen[-1].authorization
    assert first and last and first != last
    clock.advance(TOKEN_LIFETIME - RENEW_MARGIN - 60)  # the renewed token counts from the renewal
    node0.host_info()
    assert len(harness.calls("POST", P_RENEW)) == 1 and len(harness.calls("POST", P_LOGIN)) == 1


def test_expired_token_means_a_new_login(harness: Harness, node0: LocalUIClient, clock: ManualClock) -> None:
    node0.host_info()
    clock.advance(TOKEN_LIFETIME + 1)
    node0.host_info()
    assert len(harness.calls("POST", P_LOGIN)) == 2 and not harness.calls("POST", P_RENEW)
    assert all(e.status in (200,) for e in harness.seen)


def test_revoked_session_logs_in_again_once(harness: Harness, node0: LocalUIClient, lab: Lab) -> None:
    node0.host_info()
    state = lab.nodes[0].state
    token = harness.seen[-1].authorization
    state.logout(state.authenticate(token))  # e.g. the node restarted and forgot its sessions
    assert node0.host_info().uid == state.uid
    statuses = [(e.path, e.status) for e in harness.seen[-3:]]
    assert statuses == [
        ("/v1/edge-mgmt/edgehosts/current", 401),
        (P_LOGIN, 200),
        ("/v1/edge-mgmt/edgehosts/current", 200),
    ]


def test_bad_credentials(harness: Harness) -> None:
    with harness.connector.open(harness.endpoint(0, password="wrong")) as c, pytest.raises(LocalUILoginFailed) as err:
        c.host_info()
    assert err.value.status == 401 and "kairos" in err.value.message and "TUI" in err.value.remediation


def test_unreachable_local_ui(harness: Harness, node0: LocalUIClient, lab: Lab) -> None:
    node0.host_info()
    lab.nodes[0].server.stop()
    assert node0.ping() is False
    with pytest.raises(LocalUIUnreachable) as err:
        node0.host_info()
    assert err.value.title == "Local UI unreachable" and "refused" in err.value.message
    assert "powered on" in err.value.remediation
    lab.nodes[0].server.start()
    assert node0.ping() and node0.host_info().uid == lab.nodes[0].state.uid


def test_changed_certificate_is_refused(lab: Lab, clock: ManualClock) -> None:
    # Pinned to node 2's certificate but node 1 answers: what a reinstalled node or an interceptor looks like.
    node = lab.nodes[0]
    other = lab.nodes[1]
    c = LocalUIClient(
        "127.0.0.1",
        node.server.port,
        "kairos",
        "kairos",
        ssl_context=other.client_ssl_context(),
        clock=clock,
        pinned=other.fingerprint,
    )
    with c, pytest.raises(TrustChanged) as err:
        c.host_info()
    assert same_fingerprint(err.value.request.presented, node.fingerprint)
    assert same_fingerprint(str(err.value.request.pinned), other.fingerprint)
    assert "changed" in err.value.title.lower()


def test_client_errors_carry_the_servers_message(node0: LocalUIClient) -> None:
    with pytest.raises(LocalUIError) as err:
        node0.link("bm90IGpzb24=")  # base64 of "not json"
    assert err.value.status == 400 and "base64-encoded JSON" in err.value.message
    assert err.value.code == "InvalidLinkToken"


def test_a_failed_link_is_resent_only_after_reading_the_link_status(harness: Harness, lab: Lab) -> None:
    """A 500 to a link leaves open whether it took effect: the follower's own link status is read (not linked: 404)
    before each resend, and after the policy's attempts the node's error stands."""
    with harness.connector.open(harness.endpoint(1)) as leader:
        token = leader.generate_link_token().token
    lab.nodes[1].server.stop()  # the follower cannot reach the leader named in the token: a 500
    with harness.connector.open(harness.endpoint(0)) as c, pytest.raises(LocalUIServerError) as err:
        c.link(token)
    assert err.value.status == 500 and "cannot reach the leader" in err.value.message
    link = [(e.method, e.status) for e in harness.seen if e.path in (P_LINK, P_LINK + "/status")]
    sends = [s for m, s in link if m == "POST"]
    assert sends == [500] * FAST_RETRY.attempts
    # Never two sends in a row: every resend follows a read of the state that said "not linked".
    assert link == [("POST", 500), ("GET", 404)] * (FAST_RETRY.attempts - 1) + [("POST", 500)]
    assert len(harness.calls("POST", P_LINK_TOKEN)) == 1


def test_a_link_that_took_effect_is_not_sent_again(harness: Harness, lab: Lab) -> None:
    """The node links the follower but its answer is a 500 (a proxy, a crash after the work): the link status says
    linked, so the client takes that as the answer and sends nothing more."""
    with harness.connector.open(harness.endpoint(1)) as leader:
        token = leader.generate_link_token().token
    registry = lab.nodes[0].server.registry
    real_link = registry.link

    def link_then_fail(follower: object, tok: str) -> dict[str, object]:
        real_link(follower, tok)  # type: ignore[arg-type]
        raise_500()
        return {}

    def raise_500() -> None:
        from wizard.lab.node import LocalUIError as LabError

        raise LabError(500, "InternalError", "the answer was lost")

    registry.link = link_then_fail  # type: ignore[method-assign]
    try:
        with harness.connector.open(harness.endpoint(0)) as c:
            status = c.link(token)
    finally:
        registry.link = real_link  # type: ignore[method-assign]
    assert any(p.role == "leader" and p.id == lab.nodes[1].state.uid for p in status.peers)
    assert [e.status for e in harness.calls("POST", P_LINK)] == [500]


def test_idempotent_reads_are_retried_below_the_client(harness: Harness, lab: Lab) -> None:
    with harness.connector.open(harness.endpoint(0)) as c:
        c.host_info()
        lab.nodes[0].state.localui_errors = 3  # the next three requests answer 500
        assert c.host_info().uid == lab.nodes[0].state.uid
    statuses = [e.status for e in harness.calls("GET", "/v1/edge-mgmt/edgehosts/current")]
    assert statuses == [200, 500, 500, 500, 200]


def test_cancel_during_a_retry_wait_takes_effect_at_once(harness: Harness, lab: Lab) -> None:
    with harness.connector.open(harness.endpoint(1)) as leader:
        token = leader.generate_link_token().token
    lab.nodes[1].server.stop()  # every link attempt answers 500
    harness.connector.retry = RetryPolicy(base=600.0, cap=600.0)  # would outlast the test if the cancel were ignored
    cancel = CancelToken()
    timer = threading.Timer(0.2, cancel.cancel)
    timer.start()
    try:
        with harness.connector.open(harness.endpoint(0), cancel) as c, pytest.raises(Cancelled):
            c.link(token)
    finally:
        timer.cancel()
    assert [e.status for e in harness.calls("POST", P_LINK)] == [500]


def test_the_checker_rejects_bodies_outside_the_spec(node0: LocalUIClient) -> None:
    with pytest.raises(SpecViolation):
        node0.request("POST", P_LINK, json={"token": 5})
