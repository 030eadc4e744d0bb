"""The lab's Palette system console API over real TLS with httpx, verified against the console's own certificate."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from wizard.lab.certs import NodeCertificate, create_node_certificate
from wizard.lab.clock import ManualClock
from wizard.lab.console import (
    DEFAULT_ADMIN_PASSWORD,
    TOKEN_TTL,
    TRIAL_DAYS,
    SystemConsoleServer,
    SystemConsoleState,
    iso8601,
)

pytestmark = pytest.mark.lab

LOGIN = "/v1/auth/syslogin"
RESET = "/v1/system/admin/password/reset"
ACTIVATION = "/v1/system/activation"
ACTIVATIONS = "/v1/activations/system"
ACTIVATE = "/v1/system/activate"
VERSION = "/v1/system/version/installed"
REGISTRIES = "/v1/registries/oci/summary"
NEW_PASSWORD = "Rehearsal-Pass1"
EMAIL = "ops@example.com"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> NodeCertificate:
    folder: Path = tmp_path_factory.mktemp("console-cert")
    return create_node_certificate(folder, ip="127.0.0.1", hostname="palette.lab")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def state(clock: ManualClock) -> SystemConsoleState:
    return SystemConsoleState(clock, sync_duration=60.0, pack_count=12)


@pytest.fixture
def server(state: SystemConsoleState, certificate: NodeCertificate) -> Iterator[SystemConsoleServer]:
    with SystemConsoleServer(state, certificate, socket_timeout=5.0) as started:
        yield started


@pytest.fixture
def http(server: SystemConsoleServer, certificate: NodeCertificate) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, verify=certificate.client_context(), timeout=5.0) as client:
        yield client


def login(http: httpx.Client, password: str = DEFAULT_ADMIN_PASSWORD) -> tuple[str, bool]:
    r = http.post(LOGIN, json={"username": "admin", "password": password})
    assert r.status_code == 200, r.text
    body = r.json()
    return body["Authorization"], body["IsPasswordReset"]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": token}


def ready(http: httpx.Client) -> str:
    """Log in and change the default password; returns a token for a fully usable session."""
    token, _ = login(http)
    r = http.patch(
        RESET,
        json={"email": EMAIL, "oldPassword": DEFAULT_ADMIN_PASSWORD, "newPassword": NEW_PASSWORD},
        headers=auth(token),
    )
    assert r.status_code == 204, r.text
    return token


# -- First login and the forced password change --------------------------------------------------------------------


def test_first_login_requires_password_reset(http: httpx.Client) -> None:
    token, reset_required = login(http)
    assert token and reset_required is True


def test_bad_credentials_are_401_json(http: httpx.Client) -> None:
    for user, password in (("admin", "wrong"), ("root", DEFAULT_ADMIN_PASSWORD)):
        r = http.post(LOGIN, json={"username": user, "password": password})
        assert r.status_code == 401
        assert r.json()["code"] == "InvalidCredentials"
    assert http.post(LOGIN, json={"username": "admin"}).status_code == 400


def test_calls_before_reset_are_forbidden(http: httpx.Client) -> None:
    token, _ = login(http)
    for path in (ACTIVATION, ACTIVATIONS, VERSION, REGISTRIES):
        r = http.get(path, headers=auth(token))
        assert r.status_code == 403, path
        assert "password must be changed" in r.json()["message"]


def test_password_reset(http: httpx.Client, state: SystemConsoleState) -> None:
    token, _ = login(http)
    wrong_old = {"email": EMAIL, "oldPassword": "nope", "newPassword": NEW_PASSWORD}
    r = http.patch(RESET, json=wrong_old, headers=auth(token))
    assert r.status_code == 401 and r.json()["code"] == "InvalidCredentials"
    for weak in ("short", DEFAULT_ADMIN_PASSWORD):
        r = http.patch(
            RESET,
            json={"email": EMAIL, "oldPassword": DEFAULT_ADMIN_PASSWORD, "newPassword": weak},
            headers=auth(token),
        )
        assert r.status_code == 400 and r.json()["message"], weak
    bad_email = {"email": "nobody", "oldPassword": DEFAULT_ADMIN_PASSWORD, "newPassword": NEW_PASSWORD}
    assert http.patch(RESET, json=bad_email, headers=auth(token)).status_code == 400
    assert state.password_reset_required

    good = {"email": EMAIL, "oldPassword": DEFAULT_ADMIN_PASSWORD, "newPassword": NEW_PASSWORD}
    r = http.patch(RESET, json=good, headers=auth(token))
    assert r.status_code == 204 and r.content == b""
    assert state.admin_email == EMAIL and not state.password_reset_required
    # The same session is now let through; the old password no longer logs in; the new one reports no reset due.
    assert http.get(VERSION, headers=auth(token)).status_code == 200
    assert http.post(LOGIN, json={"username": "admin", "password": DEFAULT_ADMIN_PASSWORD}).status_code == 401
    assert login(http, NEW_PASSWORD)[1] is False


# -- Tokens --------------------------------------------------------------------------------------------------------


def test_header_and_cookie_auth(http: httpx.Client) -> None:
    token = ready(http)
    assert http.get(VERSION, headers=auth(token)).json()["version"]
    r = http.get(VERSION, headers={"Cookie": f"theme=dark; Authorization={token}"})
    assert r.status_code == 200
    assert http.get(VERSION).status_code == 401
    assert http.get(VERSION, headers=auth("not-a-token")).status_code == 401
    assert http.get(VERSION, headers={"Cookie": "Authorization=not-a-token"}).status_code == 401


def test_token_expires_after_15_minutes(http: httpx.Client, clock: ManualClock) -> None:
    token = ready(http)
    clock.advance(TOKEN_TTL - 1)
    assert http.get(VERSION, headers=auth(token)).status_code == 200
    clock.advance(1)
    r = http.get(VERSION, headers=auth(token))
    assert r.status_code == 401 and r.json()["code"] == "TokenExpired"
    fresh, _ = login(http, NEW_PASSWORD)
    assert http.get(VERSION, headers=auth(fresh)).status_code == 200


# -- Activation ----------------------------------------------------------------------------------------------------


def test_activation_flow(http: httpx.Client, state: SystemConsoleState, clock: ManualClock) -> None:
    token = ready(http)
    body = http.get(ACTIVATION, headers=auth(token)).json()
    assert body["status"]["state"] == "Pending" and "lastActivatedAt" not in body["status"]
    assert body["spec"]["systemUid"] == state.system_uid  # the "Product Setup ID" an operator sends to support
    assert http.get(ACTIVATIONS, headers=auth(token)).json()["status"]["state"] == "Pending"

    foreign = SystemConsoleState(clock).issue_activation_key()
    r = http.post(ACTIVATE, json={"activationKey": foreign.key}, headers=auth(token))
    assert r.status_code == 400 and "another system" in r.json()["message"]
    for junk in ("", "lab-act-!!!", "ABCD-EFGH"):
        assert http.post(ACTIVATE, json={"activationKey": junk}, headers=auth(token)).status_code == 400

    key = state.issue_activation_key()
    clock.advance(60)
    r = http.post(ACTIVATE, json={"activationKey": key.key}, headers=auth(token))
    assert r.status_code in (200, 201), r.text
    body = http.get(ACTIVATION, headers=auth(token)).json()
    assert body["status"] == {"state": "Active", "lastActivatedAt": iso8601(clock())}
    assert body["spec"] == {"activationKeyUid": key.key_uid, "planUid": key.plan_uid, "systemUid": state.system_uid}
    assert http.get(ACTIVATIONS, headers=auth(token)).json()["status"]["state"] == "Active"

    r = http.post(ACTIVATE, json={"activationKey": key.key}, headers=auth(token))
    assert r.status_code == 400 and "already been used" in r.json()["message"]


def test_trial_expiry_is_reported(http: httpx.Client, state: SystemConsoleState, clock: ManualClock) -> None:
    token = ready(http)
    expires = state.installed_at + TRIAL_DAYS * 86400
    status = http.get(ACTIVATIONS, headers=auth(token)).json()["status"]
    assert status == {"state": "Pending", "expiresAt": iso8601(expires)}
    clock.set(expires)
    token, _ = login(http, NEW_PASSWORD)
    assert http.get(ACTIVATIONS, headers=auth(token)).json()["status"]["state"] == "Inactive"
    assert http.get(ACTIVATION, headers=auth(token)).json()["status"]["state"] == "Inactive"
    # A key still brings a lapsed trial back.
    key = state.issue_activation_key()
    assert http.post(ACTIVATE, json={"activationKey": key.key}, headers=auth(token)).status_code in (200, 201)
    assert http.get(ACTIVATIONS, headers=auth(token)).json()["status"]["state"] == "Active"


# -- Version and the OCI registry ----------------------------------------------------------------------------------


def sync_status(http: httpx.Client, token: str, uid: str) -> dict[str, object]:
    r = http.get(f"/v1/registries/oci/{uid}/basic/sync/status", headers=auth(token))
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_registry_sync_runs_over_clock_time(http: httpx.Client, clock: ManualClock) -> None:
    token = ready(http)
    items = http.get(REGISTRIES, headers=auth(token)).json()["items"]
    assert len(items) == 1 and items[0]["metadata"]["name"] == "Zot"
    uid = items[0]["metadata"]["uid"]
    assert items[0]["spec"]["endpoint"]
    assert sync_status(http, token, uid)["status"] == "Idle"

    r = http.post(f"/v1/registries/oci/{uid}/basic/sync", params={"forceSync": "false"}, headers=auth(token))
    assert r.status_code == 202
    clock.advance(30)
    half = sync_status(http, token, uid)
    assert half["status"] == "InProgress" and half["syncedPacks"] == 6 and half["totalPacks"] == 12
    clock.advance(30)
    done = sync_status(http, token, uid)
    assert done["status"] == "Completed" and done["syncedPacks"] == 12 and done["lastSyncedTime"] == iso8601(clock())
    summary = http.get(REGISTRIES, headers=auth(token)).json()["items"][0]
    assert summary["status"]["syncStatus"]["status"] == "Completed"

    assert http.post("/v1/registries/oci/nope/basic/sync", headers=auth(token)).status_code == 404
    assert http.get("/v1/registries/oci/nope/basic/sync/status", headers=auth(token)).status_code == 404
    bad = http.post(f"/v1/registries/oci/{uid}/basic/sync", params={"forceSync": "maybe"}, headers=auth(token))
    assert bad.status_code == 400


def test_registry_sync_failure_knob(http: httpx.Client, state: SystemConsoleState, clock: ManualClock) -> None:
    token = ready(http)
    uid = state.registry.uid
    state.sync_fault = "registry unreachable"
    assert http.post(f"/v1/registries/oci/{uid}/basic/sync", headers=auth(token)).status_code == 202
    state.sync_fault = None  # captured at start: clearing it mid-run does not rescue this run
    clock.advance(60)
    failed = sync_status(http, token, uid)
    assert failed["status"] == "Failed" and failed["message"] == "registry unreachable"
    assert "lastSyncedTime" not in failed
    # A retry without the fault goes through.
    assert http.post(f"/v1/registries/oci/{uid}/basic/sync", headers=auth(token)).status_code == 202
    assert sync_status(http, token, uid)["status"] == "InProgress"
    clock.advance(60)
    assert sync_status(http, token, uid)["status"] == "Completed"


def test_repeated_sync_does_not_restart_unless_forced(
    http: httpx.Client, state: SystemConsoleState, clock: ManualClock
) -> None:
    token = ready(http)
    path = f"/v1/registries/oci/{state.registry.uid}/basic/sync"
    http.post(path, headers=auth(token))
    clock.advance(40)
    assert http.post(path, params={"forceSync": "false"}, headers=auth(token)).status_code == 202
    clock.advance(20)
    assert sync_status(http, token, state.registry.uid)["status"] == "Completed"
    http.post(path, headers=auth(token))
    clock.advance(40)
    assert http.post(path, params={"forceSync": "true"}, headers=auth(token)).status_code == 202
    clock.advance(20)
    assert sync_status(http, token, state.registry.uid)["syncedPacks"] == 4  # restarted 20 s ago


# -- Routing and lifecycle -----------------------------------------------------------------------------------------


def test_unknown_paths_and_methods(http: httpx.Client) -> None:
    token = ready(http)
    r = http.get("/v1/nothing/here", headers=auth(token))
    assert r.status_code == 404 and r.json()["code"] == "NotFound"
    assert http.get("/v1/nothing/here").status_code == 404  # unknown paths do not need a token
    assert http.delete(VERSION, headers=auth(token)).status_code == 405
    r = http.post(LOGIN, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_certificate_is_verified(server: SystemConsoleServer, tmp_path: Path) -> None:
    other = create_node_certificate(tmp_path, ip="127.0.0.1", hostname="other.lab")
    with httpx.Client(verify=other.client_context()) as wrong, pytest.raises(httpx.ConnectError):
        wrong.get(server.url + VERSION)


def test_stop_closes_port_and_joins_threads(state: SystemConsoleState, certificate: NodeCertificate) -> None:
    before = set(threading.enumerate())
    console = SystemConsoleServer(state, certificate, socket_timeout=5.0).start()
    port = console.port
    # A kept-alive connection left open must not hold stop() up.
    with httpx.Client(base_url=console.url, verify=certificate.client_context()) as client:
        assert client.post(LOGIN, json={"username": "admin", "password": "admin"}).status_code == 200
        console.stop()
    assert not console.running
    assert set(threading.enumerate()) <= before
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1.0):
        pass
    # Restartable on the same port, keeping its state.
    with console:
        assert console.port == port
        with httpx.Client(base_url=console.url, verify=certificate.client_context()) as client:
            assert client.post(LOGIN, json={"username": "admin", "password": "admin"}).status_code == 200
