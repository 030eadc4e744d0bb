"""The lab's Local UI against the published spec and documented behaviour, over real TLS with httpx."""

from __future__ import annotations

import base64
import gc
import hashlib
import io
import json
import socket
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.integration.localui_client import SpecCheckedClient, random_file
from wizard.appliance import localui_spec
from wizard.appliance.localui_spec import SpecViolation, UnknownOperation
from wizard.lab import Lab, LocalUIServer, ManualClock, NodeState
from wizard.lab.certs import create_node_certificate, fingerprint_der, fingerprint_pem_file
from wizard.lab.lab import NodeFaults
from wizard.lab.links import LinkClaims, decode_link_token, encode_link_token
from wizard.lab.localui import implemented_operations
from wizard.lab.multipart import MultipartError, parse_multipart
from wizard.lab.node import EXTENDED_TOKEN_TTL, TOKEN_TTL, iso8601
from wizard.lab.nodelogs import LOG_COLLECT_SECONDS

pytestmark = pytest.mark.lab

Clients = Callable[[int], SpecCheckedClient]

LOGIN = "/v1/users/default/login"
HOST = "/v1/edge-mgmt/edgehosts/current"
GENERATE = "/v1/edge-mgmt/edgehosts/current/link/generate-token"
LINK = "/v1/edge-mgmt/edgehosts/current/link"
LINK_STATUS = "/v1/edge-mgmt/edgehosts/current/link/status"
UNLINK = "/v1/edge-mgmt/edgehosts/current/unlink"
UPLOAD = "/v1/edge-mgmt/edgehosts/current/actions/upload-content"
DETAILS = "/v1/edge-mgmt/edgehosts/current/uploaded-content/details"
USERDATA = "/v1/edge-mgmt/edgehosts/current/userdata"
CONFIGURATIONS = "/v1/edge-mgmt/edgehosts/current/configurations"


def logged_in(client: Clients, index: int) -> SpecCheckedClient:
    c = client(index)
    c.login()
    return c


# -- TLS and liveness ----------------------------------------------------------------------------------------------


def test_ping_over_verified_tls(client: Clients) -> None:
    r = client(0).get("/v1/ping", expect=200, token=None)
    assert r.json()["msg"]


def test_certificate_is_pinned_per_node(lab: Lab) -> None:
    node, other = lab.nodes[0], lab.nodes[1]
    assert fingerprint_pem_file(node.cert_path) == node.fingerprint != other.fingerprint
    with httpx.Client(verify=other.client_ssl_context()) as wrong, pytest.raises(httpx.ConnectError):
        wrong.get(f"{node.url}/v1/ping")
    ctx = node.client_ssl_context()
    raw = socket.create_connection(("127.0.0.1", node.server.port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None and fingerprint_der(der) == node.fingerprint


# -- Login, sessions, password -------------------------------------------------------------------------------------


def test_login_default_account(client: Clients) -> None:
    c = client(0)
    r = c.post(LOGIN, json={"username": "kairos", "password": "kairos"}, expect=200)
    body = r.json()
    assert body["IsFirstLogin"] is True
    assert body["Token"]["Authorization"].count(".") == 2
    assert "Authorization=" in r.headers["set-cookie"]  # setCookie defaults to true
    r = c.post(LOGIN, params={"setCookie": "false"}, json={"username": "kairos", "password": "kairos"}, expect=200)
    assert "set-cookie" not in r.headers
    # Blank query values take the spec's defaults; a value that is not a boolean is refused.
    c.post(f"{LOGIN}?setCookie=&extendedSession=", json={"username": "kairos", "password": "kairos"}, expect=200)
    c.post(LOGIN, params={"extendedSession": "maybe"}, json={"username": "kairos", "password": "kairos"}, expect=400)


def test_login_bad_credentials_and_bad_bodies(client: Clients) -> None:
    c = client(0)
    r = c.post(LOGIN, json={"username": "kairos", "password": "nope"}, expect=401)
    assert r.json()["code"] == "Unauthorized"
    c.post(LOGIN, json={"username": "nobody", "password": "kairos"}, expect=401)
    r = c.post(LOGIN, json={"username": 5, "password": "kairos"}, expect=400)  # rejected by the spec's schema
    assert "$.username" in r.json()["message"]
    c.post(LOGIN, content=b"{not json", headers={"Content-Type": "application/json"}, expect=400)
    c.post(LOGIN, expect=400)


def test_login_rate_limit_then_lock(client: Clients, clock: ManualClock) -> None:
    c = client(0)
    good = {"username": "kairos", "password": "kairos"}
    bad = {"username": "kairos", "password": "wrong"}
    for _ in range(3):
        c.post(LOGIN, json=bad, expect=401)
    # After three failures each attempt waits: 1 s, then 2 s (doubling).
    r = c.post(LOGIN, json=good, expect=429)
    assert r.json()["code"] == "LoginDelayed" and r.headers["retry-after"] == "1"
    clock.advance(1)
    c.post(LOGIN, json=bad, expect=401)  # fourth failure
    clock.advance(1)
    r = c.post(LOGIN, json=good, expect=429)
    assert r.headers["retry-after"] == "1"
    clock.advance(1)
    c.post(LOGIN, json=bad, expect=401)  # fifth failure locks the account for 15 minutes
    r = c.post(LOGIN, json=good, expect=429)
    assert r.json()["code"] == "AccountLocked"
    assert r.json()["details"]["retryAfterSeconds"] == 900
    clock.advance(15 * 60 - 1)
    c.post(LOGIN, json=good, expect=429)
    clock.advance(1)
    c.login()
    # Success resets the count: two new failures bring no delay.
    c.post(LOGIN, json=bad, expect=401)
    c.post(LOGIN, json=bad, expect=401)
    c.post(LOGIN, json=good, expect=200)


def test_every_other_path_needs_a_token(client: Clients) -> None:
    c = client(0)
    c.get(HOST, token=None, expect=401)
    c.get(HOST, token="not-a-token", expect=401)
    token = c.login()["Token"]["Authorization"]
    c.get(HOST, token=f"Bearer {token}", expect=401)  # the Local UI takes the bare token, no scheme
    # The login cookie sits in httpx's jar, yet without the header the API still refuses.
    assert c.http.cookies.get("Authorization")
    c.get("/v1/users/current", token=None, expect=401)
    c.get(HOST, expect=200)
    # A token belongs to the node that issued it.
    client(1).get(HOST, token=token, expect=401)


def test_token_expiry(client: Clients, clock: ManualClock) -> None:
    c = client(0)
    c.login()
    short = c.token
    c.login(extendedSession="true")
    extended = c.token
    clock.advance(TOKEN_TTL - 1)
    c.get(HOST, token=short, expect=200)
    clock.advance(1)
    r = c.get(HOST, token=short, expect=401)
    assert "expired" in r.json()
    clock.advance(EXTENDED_TOKEN_TTL - TOKEN_TTL - 1)
    c.get(HOST, token=extended, expect=200)
    clock.advance(1)
    c.get(HOST, token=extended, expect=401)


def test_token_renewal_and_logout(client: Clients, clock: ManualClock) -> None:
    c = client(0)
    c.login()
    old = c.token
    clock.advance(TOKEN_TTL / 2)
    r = c.post("/v1/users/default/token/renewal", expect=200)
    new = r.json()["Authorization"]
    assert new != old
    c.get(HOST, token=old, expect=200)  # the old token lives on until its own expiry
    clock.advance(TOKEN_TTL / 2)
    c.get(HOST, token=old, expect=401)
    c.get(HOST, token=new, expect=200)
    c.post("/v1/users/default/logout", token=new, expect=200)
    c.get(HOST, token=new, expect=401)
    c.post("/v1/users/default/logout", token=new, expect=401)


def test_password_reset_clears_first_login(client: Clients) -> None:
    c = client(0)
    assert c.login()["IsFirstLogin"] is True
    reset = "/v1/users/default/password/reset"
    c.post(reset, json={"oldPassword": "wrong", "newPassword": "N3w-secret"}, expect=401)
    r = c.post(reset, json={"oldPassword": "kairos", "newPassword": "N3w-secret"}, expect=204)
    assert r.content == b""
    c.post(LOGIN, json={"username": "kairos", "password": "kairos"}, expect=401)
    assert c.login(password="N3w-secret")["IsFirstLogin"] is False
    user = c.get("/v1/users/current", expect=200).json()
    assert user["userName"] == "kairos" and user["disablePasswordUpdate"] is False
    c.post(reset, json={"oldPassword": 1}, expect=400)


# -- Host ----------------------------------------------------------------------------------------------------------


def test_host_info_and_settings(lab: Lab, client: Clients) -> None:
    c = logged_in(client, 1)
    info = c.get(HOST, expect=200).json()
    node = lab.nodes[1].state
    assert info["metadata"] == info["metadata"] | {"id": node.uid, "name": node.hostname}
    assert info["spec"]["networkInfo"][0]["ip"] == "127.0.0.1"
    hw = info["spec"]["hardwareSpec"]
    assert hw["cpu"]["cores"] >= 8 and hw["memory"]["sizeInMB"] >= 16 * 1024 and len(hw["disks"]) == 2
    assert info["status"]["configurationStatus"] == "configured"
    assert len({n.state.uid for n in lab.nodes}) == 3
    settings = c.get("/v1/edge-mgmt/settings", expect=200).json()
    assert settings["installationMode"] == "airgap" and settings["managementMode"] == "local"


def test_host_uid_is_stable_across_restarts(tmp_path: Path) -> None:
    first = NodeState(name="n", data_dir=tmp_path / "n")
    again = NodeState(name="n", data_dir=tmp_path / "n")
    assert first.uid == again.uid and first.uid.startswith("edge-")


# -- Linking -------------------------------------------------------------------------------------------------------


def generate(c: SpecCheckedClient) -> str:
    body = c.post(GENERATE, expect=200).json()
    assert body["interval"] == 120 and 0 < body["remainingTime"] <= 120
    token: str = body["token"]
    return token


def test_link_leader_and_two_followers(lab: Lab, client: Clients) -> None:
    leader, f1, f2 = (logged_in(client, i) for i in range(3))
    leader.get(LINK_STATUS, expect=404)  # not linked yet
    token = generate(leader)
    claims = json.loads(base64.b64decode(token))
    assert claims["ip"] == "127.0.0.1" and claims["port"] == lab.nodes[0].server.port and claims["otp"]
    assert generate(leader) == token  # the current OTP is handed out until used or expired

    r = f1.post(LINK, json={"token": token}, expect=200).json()
    assert r["status"] == "Completed" and [p["role"] for p in r["peers"]] == ["leader", "follower"]
    token2 = generate(leader)
    assert token2 != token
    f2.post(LINK, json={"token": token2}, expect=200)

    status = leader.get(LINK_STATUS, expect=200).json()
    assert status["status"] == "Completed"
    peers = {p["id"]: p for p in status["peers"]}
    uids = [n.state.uid for n in lab.nodes]
    assert list(peers) == uids
    assert [peers[u]["role"] for u in uids] == ["leader", "follower", "follower"]
    for i, uid in enumerate(uids):
        p = peers[uid]
        assert p["ip"] == "127.0.0.1" and p["localUIPort"] == str(lab.nodes[i].server.port)
        assert p["status"] == "Ready" and p["health"]["status"] == "Healthy"
        assert p["contentSyncStatus"] == "NotSynced" and p["config"]["metadata"]["id"] == uid

    follower_view = f2.get(LINK_STATUS, expect=200).json()
    assert [(p["id"], p["role"]) for p in follower_view["peers"]] == [(uids[0], "leader"), (uids[2], "follower")]


def test_link_token_expires_after_two_minutes(client: Clients, clock: ManualClock) -> None:
    leader, f1 = logged_in(client, 0), logged_in(client, 1)
    token = generate(leader)
    clock.advance(121)
    r = f1.post(LINK, json={"token": token}, expect=400)
    assert "expired" in r.json()["message"]
    fresh = generate(leader)
    assert fresh != token
    f1.post(LINK, json={"token": fresh}, expect=200)


def test_link_token_is_one_time(client: Clients) -> None:
    leader, f1, f2 = (logged_in(client, i) for i in range(3))
    token = generate(leader)
    f1.post(LINK, json={"token": token}, expect=200)
    r = f2.post(LINK, json={"token": token}, expect=400)
    assert "already used" in r.json()["message"]


def test_relink_to_same_leader_is_idempotent(lab: Lab, client: Clients) -> None:
    leader, f1, f2 = (logged_in(client, i) for i in range(3))
    token = generate(leader)
    f1.post(LINK, json={"token": token}, expect=200)
    f1.post(LINK, json={"token": token}, expect=200)  # a retry with the spent token converges
    fresh = generate(leader)
    f1.post(LINK, json={"token": fresh}, expect=200)
    assert len(leader.get(LINK_STATUS, expect=200).json()["peers"]) == 2
    f2.post(LINK, json={"token": fresh}, expect=200)  # the idempotent relink did not spend the fresh OTP
    assert len(leader.get(LINK_STATUS, expect=200).json()["peers"]) == 3


def test_link_refusals(lab: Lab, client: Clients) -> None:
    leader, f1, f2 = (logged_in(client, i) for i in range(3))
    token = generate(leader)
    leader.post(LINK, json={"token": token}, expect=400)  # a host cannot link to itself
    f1.post(LINK, json={"token": "%%%"}, expect=400)
    f1.post(LINK, json={"token": base64.b64encode(b'{"ip": "127.0.0.1"}').decode()}, expect=400)
    f1.post(LINK, json={}, expect=400)
    f1.post(LINK, json={"token": 5}, expect=400)  # the spec says a string
    forged = encode_link_token(LinkClaims("127.0.0.1", lab.nodes[0].server.port, lab.nodes[0].state.uid, "guess"))
    assert "unknown" in f1.post(LINK, json={"token": forged}, expect=400).json()["message"]
    f1.post(LINK, json={"token": token}, expect=200)
    # A leader with followers cannot become a follower; a follower cannot follow a second leader.
    other = generate(f2)
    leader.post(LINK, json={"token": other}, expect=400)
    r = f1.post(LINK, json={"token": other}, expect=400)
    assert "unlink" in r.json()["message"]
    f1.post(GENERATE, expect=400)  # a follower does not hand out tokens


def test_host_with_a_cluster_cannot_be_linked(lab: Lab, client: Clients) -> None:
    leader, f1 = logged_in(client, 0), logged_in(client, 1)
    lab.nodes[1].state.has_cluster = True
    r = f1.post(LINK, json={"token": generate(leader)}, expect=400)
    assert "cluster" in r.json()["message"]


def test_link_to_unreachable_leader(lab: Lab, client: Clients) -> None:
    leader, f1 = logged_in(client, 0), logged_in(client, 1)
    token = generate(leader)
    lab.nodes[0].server.stop()
    r = f1.post(LINK, json={"token": token}, expect=500)
    assert "cannot reach" in r.json()["message"]
    lab.nodes[0].server.start()  # same port after a restart, so the token names it again
    f1.post(LINK, json={"token": token}, expect=200)


def test_unlink(lab: Lab, client: Clients) -> None:
    leader, f1, f2 = (logged_in(client, i) for i in range(3))
    f1.post(LINK, json={"token": generate(leader)}, expect=200)
    f2.post(LINK, json={"token": generate(leader)}, expect=200)
    uid1, uid2 = lab.nodes[1].state.uid, lab.nodes[2].state.uid
    leader.post(UNLINK, expect=400)  # peerId is required
    leader.post(UNLINK, params={"peerId": "edge-unknown"}, expect=400)
    assert leader.post(UNLINK, params={"peerId": uid1}, expect=200).json()["message"]
    f1.get(LINK_STATUS, expect=404)
    assert [p["id"] for p in leader.get(LINK_STATUS, expect=200).json()["peers"]] == [lab.nodes[0].state.uid, uid2]
    f2.post(UNLINK, params={"peerId": lab.nodes[0].state.uid}, expect=200)  # a follower may leave its leader
    assert leader.get(LINK_STATUS, expect=200).json()["status"] == "Pending"


def test_link_token_codec_roundtrip() -> None:
    claims = LinkClaims("10.0.0.5", 5080, "edge-abc", "otp")
    assert decode_link_token(encode_link_token(claims)) == claims


# -- Content -------------------------------------------------------------------------------------------------------


def test_upload_content_and_details(tmp_path: Path, lab: Lab, client: Clients, clock: ManualClock) -> None:
    c = logged_in(client, 0)
    c.get(DETAILS, expect=404)
    bundle = tmp_path / "core-4.7.16.tar.zst"
    digest = random_file(bundle, 30 * 2**20 + 123)
    with bundle.open("rb") as fh:
        files = {"uploadFile": (bundle.name, fh, "application/octet-stream"), "signature": ("core.sig.bin", b"sig")}
        r = c.post(UPLOAD, files=files, expect=201)
    assert r.json()["message"]
    stored = Path(r.json()["uploadPath"])
    assert stored.name == bundle.name and stored.stat().st_size == bundle.stat().st_size
    details = c.get(DETAILS, expect=200).json()
    assert details["sha256Hash"] == digest == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert details["fileName"] == bundle.name
    assert details["sizeInBytes"] == 30 * 2**20 + 123 and details["sizeInMiB"] == 30.0
    assert details["uploadDateTime"] == iso8601(clock()) == "2025-06-15T16:00:00Z"
    content = lab.nodes[0].state.uploaded
    assert content is not None and content.signature_path is not None
    assert content.signature_path.read_bytes() == b"sig"
    # The connection is still usable after a streamed upload.
    c.get(DETAILS, expect=200)


def test_upload_needs_the_upload_file_field(tmp_path: Path, lab: Lab, client: Clients) -> None:
    c = logged_in(client, 0)
    r = c.post(UPLOAD, files={"signature": ("x.sig", b"sig")}, expect=400)
    assert "uploadFile" in r.json()["message"]
    c.post(UPLOAD, content=b"plain", headers={"Content-Type": "application/octet-stream"}, expect=400)
    r = c.post(UPLOAD, files=[("uploadFile", ("a.bin", b"1")), ("uploadFile", ("b.bin", b"2"))], expect=400)
    assert "more than one" in r.json()["message"]
    c.get(DETAILS, expect=404)
    c.post(UPLOAD, files={"uploadFile": ("a.bin", b"1"), "comment": (None, b"ignored")}, expect=201)
    c.post(UPLOAD, files={"uploadFile": ("a.bin", b"1")}, token=None, expect=401)
    # Nothing half-written is left behind.
    assert not list(lab.nodes[0].state.content_dir.glob(".upload-*"))


def test_content_syncs_to_followers_after_delay(lab: Lab, client: Clients, clock: ManualClock) -> None:
    leader, f1, f2 = (logged_in(client, i) for i in range(3))
    f1.post(LINK, json={"token": generate(leader)}, expect=200)
    leader.post(UPLOAD, files={"uploadFile": ("bundle.tar.zst", b"x" * 4096)}, expect=201)
    delay = lab.nodes[0].state.content_sync_delay
    assert delay > 1

    def sync_states() -> list[str]:
        return [p["contentSyncStatus"] for p in leader.get(LINK_STATUS, expect=200).json()["peers"]]

    assert sync_states() == ["Synced", "Syncing"]
    clock.advance(delay - 0.5)
    assert sync_states() == ["Synced", "Syncing"]
    clock.advance(0.5)
    assert sync_states() == ["Synced", "Synced"]
    # A follower that joins later gets the content a delay after it links.
    f2.post(LINK, json={"token": generate(leader)}, expect=200)
    assert sync_states() == ["Synced", "Synced", "Syncing"]
    assert [p["contentSyncStatus"] for p in f2.get(LINK_STATUS, expect=200).json()["peers"]] == ["Synced", "Syncing"]
    clock.advance(delay)
    assert sync_states() == ["Synced", "Synced", "Synced"]


def test_aborted_upload_leaves_nothing_behind(lab: Lab, client: Clients) -> None:
    c = logged_in(client, 0)
    node = lab.nodes[0]
    assert c.token is not None
    head = (
        f"POST {UPLOAD} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {c.token}\r\n"
        "Content-Type: multipart/form-data; boundary=zz\r\nContent-Length: 10000000\r\n\r\n"
        '--zz\r\nContent-Disposition: form-data; name="uploadFile"; filename="cut.bin"\r\n\r\n'
    ).encode()
    raw = socket.create_connection(("127.0.0.1", node.server.port), timeout=10)
    with node.client_ssl_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(head + b"x" * 100_000)
        deadline = time.monotonic() + 5
        while not list(node.state.content_dir.glob(".upload-*")) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert list(node.state.content_dir.glob(".upload-*")), "the server never started receiving"
    # The client went away mid-body: the partial file goes and the node carries on.
    deadline = time.monotonic() + 5
    while list(node.state.content_dir.glob(".upload-*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not list(node.state.content_dir.glob(".upload-*"))
    c.get(DETAILS, expect=404)
    c.get("/v1/ping", expect=200)


def _vm_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_upload_is_streamed_not_buffered(tmp_path: Path, lab: Lab, client: Clients) -> None:
    size = 200 * 2**20
    bundle = tmp_path / "big.tar.zst"
    digest = random_file(bundle, size)
    c = logged_in(client, 0)
    gc.collect()
    baseline = _vm_rss()
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _vm_rss())
            done.wait(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with bundle.open("rb") as fh:
            r = c.post(UPLOAD, files={"uploadFile": (bundle.name, fh)}, expect=201)
    finally:
        done.set()
        sampler.join()
    growth = peak - baseline
    assert growth < 100 * 2**20, f"RSS grew by {growth / 2**20:.0f} MiB while uploading {size / 2**20:.0f} MiB"
    assert c.get(DETAILS, expect=200).json()["sha256Hash"] == digest
    Path(r.json()["uploadPath"]).unlink()
    bundle.unlink()


# -- The spec, the routes and the server ---------------------------------------------------------------------------


def test_every_implemented_operation_is_in_the_spec() -> None:
    spec_ops = set(localui_spec.operations())
    implemented = implemented_operations()
    assert implemented <= spec_ops, implemented - spec_ops
    # 14 host, link and content operations + 9 cluster ones (cluster/settings from the newer spec) + applications,
    # the 3 registry operations, the 4 log operations, the 6 post-install configuration ones (userdata
    # GET/PUT/POST, configurations GET/PUT, status), the newer spec's 17 network ones (all but a bridge's) and its
    # 8 day-2 ones (the update archive's details and rejection, applying it by cluster/{name} or cluster/profiles,
    # the cluster's certificates, its machine pools listed, made and changed)
    assert len(implemented) == 62


def test_validator_rejects_wrong_bodies() -> None:
    with pytest.raises(SpecViolation) as err:
        localui_spec.validate_response("POST", LOGIN, 200, {"IsFirstLogin": "yes", "Token": {"Authorization": 7}})
    assert err.value.errors == [
        "$.IsFirstLogin: 'yes' is not of type 'boolean'",
        "$.Token.Authorization: 7 is not of type 'string'",
    ]
    with pytest.raises(SpecViolation, match=r"\$\.peers\[0\]\.health\.status"):
        localui_spec.validate_response("GET", LINK_STATUS, 200, {"peers": [{"health": {"status": "Fine"}}]})
    with pytest.raises(SpecViolation, match="not documented"):
        localui_spec.validate_response("POST", UPLOAD, 200, {})  # upload-content answers 201 and has no default
    with pytest.raises(SpecViolation, match="no body"):
        localui_spec.validate_response("POST", "/v1/users/default/logout", 200, {"ok": True})
    with pytest.raises(SpecViolation, match="required"):
        localui_spec.validate_request_body("POST", LINK, None)
    with pytest.raises(UnknownOperation):
        localui_spec.operation("GET", "/v1/edge-mgmt/nothing")
    # Swagger formats (date-time, int32, float) are annotations, and x-* keys are ignored.
    localui_spec.validate_response("GET", DETAILS, 200, {"uploadDateTime": "whenever", "sizeInMiB": 1})


def test_path_templates_match_parameters() -> None:
    m = localui_spec.PathMatcher(["/v1/cluster/{clusterName}", "/v1/cluster/details", "/v1/{a}/x/{b}"])
    assert m.match("/v1/cluster/details") == ("/v1/cluster/details", {})
    assert m.match("/v1/cluster/mgmt%201") == ("/v1/cluster/{clusterName}", {"clusterName": "mgmt 1"})
    assert m.match("/v1/q/x/r") == ("/v1/{a}/x/{b}", {"a": "q", "b": "r"})
    assert m.match("/v1/cluster/") is None and m.match("/v1/cluster/a/b") is None


def test_unsimulated_unknown_and_wrong_method(client: Clients) -> None:
    c = logged_in(client, 0)
    r = c.get("/v1/edge-mgmt/cluster/events", expect=501)
    assert "not simulated" in r.text
    c.get("/v1/edge-mgmt/cluster/events", token=None, expect=401)
    c.get("/v1/edge-mgmt/does-not-exist", expect=404)
    r = c.get(LOGIN, expect=405)
    assert r.headers["allow"] == "POST"


def test_stop_ends_every_thread_even_with_open_connections(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    lab = Lab(2, tmp_path / "lab", ManualClock()).start()
    idle = httpx.Client(base_url=lab.nodes[0].url, verify=lab.nodes[0].client_ssl_context())
    idle.get("/v1/ping")  # leaves a keep-alive connection, and its handler thread, open
    assert len(set(threading.enumerate()) - before) >= 3
    started = time.monotonic()
    lab.stop()
    assert time.monotonic() - started < 2
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(httpx.TransportError):
        idle.get("/v1/ping")
    idle.close()


def test_lab_without_base_dir_cleans_up() -> None:
    with Lab(1) as lab:
        folder = lab.base_dir
        assert (folder / "edge-node-1" / "tls" / "localui.crt").is_file()
    assert not folder.exists()


def test_server_context_manager_and_restart(tmp_path: Path) -> None:
    node = NodeState(name="solo", data_dir=tmp_path / "solo")
    cert = create_node_certificate(tmp_path / "tls", ip="127.0.0.1", hostname="solo")
    with LocalUIServer(node, cert) as server:
        port = server.port
        with httpx.Client(verify=cert.client_context()) as http:
            assert http.get(f"{server.url}/v1/ping").status_code == 200
    with LocalUIServer(node, cert, port=port) as again:
        assert again.url == f"https://127.0.0.1:{port}"


# -- The multipart parser ------------------------------------------------------------------------------------------


class _ByteSink:
    def __init__(self, target: bytearray) -> None:
        self.target = target

    def write(self, data: bytes) -> None:
        self.target.extend(data)


def _form(boundary: bytes, fields: list[tuple[str, bytes]], preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    out = preamble
    for name, data in fields:
        out += b"--" + boundary + b"\r\n"
        out += f'Content-Disposition: form-data; name="{name}"; filename="{name}.bin"\r\n\r\n'.encode()
        out += data + b"\r\n"
    return out + b"--" + boundary + b"--\r\n" + epilogue


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 64, 1 << 20])
def test_multipart_parser_handles_delimiters_split_across_reads(chunk_size: int) -> None:
    boundary = b"----b0undary"
    tricky = b"\r\n--" + boundary[:-1] + b"X\r\n-\r\n--\r" + b"\r\n----b0undar" + bytes(range(256))
    body = _form(boundary, [("uploadFile", tricky), ("signature", b""), ("note", b"hi")], b"preamble\r\n", b"tail")
    got: dict[str, bytearray] = {}
    parts = parse_multipart(
        io.BytesIO(body),
        boundary,
        len(body),
        lambda info: _ByteSink(got.setdefault(info.name, bytearray())),
        chunk_size=chunk_size,
    )
    assert [p.name for p in parts] == ["uploadFile", "signature", "note"]
    assert parts[0].filename == "uploadFile.bin"
    assert got == {"uploadFile": bytearray(tricky), "signature": bytearray(), "note": bytearray(b"hi")}


def test_multipart_parser_rejects_truncated_bodies() -> None:
    boundary = b"xyz"
    body = _form(boundary, [("uploadFile", b"data")])
    with pytest.raises(MultipartError):
        parse_multipart(io.BytesIO(body[:-10]), boundary, len(body), lambda _: _ByteSink(bytearray()))
    with pytest.raises(MultipartError):
        truncated = body[: body.rindex(b"--xyz--")]
        parse_multipart(io.BytesIO(truncated), boundary, len(truncated), lambda _: _ByteSink(bytearray()))
    with pytest.raises(MultipartError):
        bad = b"--xyz\r\nX-Nothing: 1\r\n\r\ndata\r\n--xyz--\r\n"
        parse_multipart(io.BytesIO(bad), boundary, len(bad), lambda _: _ByteSink(bytearray()))


# -- Logs: generate, status, download, error events ----------------------------------------------------------------

GEN_LOGS = "/v1/edge-mgmt/edgehosts/current/generate-logs"
GEN_STATUS = "/v1/edge-mgmt/edgehosts/current/generate-logs-status"
DOWNLOAD_LOGS = "/v1/edge-mgmt/edgehosts/current/download-logs"
ERROR_LOGS = "/v1/edge-mgmt/edgehosts/current/error-logs"


def _tar_members(data: bytes) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        out = {}
        for m in tar:
            f = tar.extractfile(m)
            assert f is not None
            out[m.name] = f.read().decode()
        return out


def test_log_collection_and_download(lab: Lab, client: Clients, clock: ManualClock) -> None:
    c = logged_in(client, 0)
    node = lab.nodes[0]
    for path in (GEN_STATUS, DOWNLOAD_LOGS):
        c.get(path, token=None, expect=401)
    c.post(GEN_LOGS, token=None, expect=401)
    assert c.get(GEN_STATUS, expect=200).json()["status"] == "Unknown"
    r = c.get(DOWNLOAD_LOGS, expect=404)
    assert "no logs" in r.json()["message"]
    assert c.post(GEN_LOGS, expect=202).json()["message"] == "log collection started"
    assert c.get(GEN_STATUS, expect=200).json()["status"] == "InProgress"
    c.get(DOWNLOAD_LOGS, expect=404)  # not ready yet
    assert "already" in c.post(GEN_LOGS, expect=202).json()["message"]  # one collection at a time
    clock.advance(LOG_COLLECT_SECONDS)
    assert c.get(GEN_STATUS, expect=200).json()["status"] == "Completed"
    r = c.get(DOWNLOAD_LOGS, expect=200)
    assert r.headers["content-type"] == "application/x-tar"
    assert r.headers["content-disposition"] == 'attachment; filename="edge-node-1-logs.tar"'
    members = _tar_members(r.content)
    root = "edge-node-1-logs/"
    assert set(members) == {
        root + "journalctl.log",
        root + "usr/local/installer.log",
        root + "var/log/stylus-agent.log",
        root + "var/log/stylus-audit.log",
    }
    # The files are the node's own: the same journal SSH shows, the same agent log.
    assert members[root + "journalctl.log"].splitlines() == node.machine.journal()
    assert members[root + "var/log/stylus-agent.log"].splitlines() == node.machine.service_log()
    audit = members[root + "var/log/stylus-audit.log"]
    assert "user=- POST /v1/users/default/login 200" in audit
    assert f"user=kairos POST {GEN_LOGS} 202" in audit
    assert f"user=- GET {GEN_STATUS} 401" in audit
    assert c.token is not None and c.token not in audit and "kairos\n" not in audit
    # A later collection sees later lines; the archive is made when the collection completes.
    c.get(HOST, expect=200)
    c.post(GEN_LOGS, expect=202)
    clock.advance(LOG_COLLECT_SECONDS)
    again = _tar_members(c.get(DOWNLOAD_LOGS, expect=200).content)[root + "var/log/stylus-audit.log"]
    assert f"user=kairos GET {HOST} 200\n" in again and f"GET {HOST} 200\n" not in audit
    assert node.logs.collections == 2


def test_log_collection_failure_knob(lab: Lab, client: Clients, clock: ManualClock) -> None:
    node = lab.nodes[1]
    node.apply(NodeFaults(log_collection_error="no space left on /usr/local"))
    c = logged_in(client, 1)
    c.post(GEN_LOGS, expect=202)
    clock.advance(LOG_COLLECT_SECONDS)
    status = c.get(GEN_STATUS, expect=200).json()
    assert status == {"status": "Failed", "msg": "log collection failed: no space left on /usr/local"}
    c.get(DOWNLOAD_LOGS, expect=404)
    node.apply(NodeFaults())
    c.post(GEN_LOGS, expect=202)
    clock.advance(LOG_COLLECT_SECONDS)
    assert c.get(GEN_STATUS, expect=200).json()["status"] == "Completed"
    c.get(DOWNLOAD_LOGS, expect=200)


def test_error_logs(lab: Lab, client: Clients) -> None:
    node = lab.nodes[0]
    c = logged_in(client, 0)
    c.get(ERROR_LOGS, params={"logCount": "5"}, token=None, expect=401)
    c.get(ERROR_LOGS, expect=400)  # logCount is required
    c.get(ERROR_LOGS, params={"logCount": "many"}, expect=400)
    c.get(ERROR_LOGS, params={"logCount": "0"}, expect=400)
    assert c.get(ERROR_LOGS, params={"logCount": "5"}, expect=200).json() == {"items": []}
    lines = [f"2026-11-23T10:00:0{i}Z stylus-operator: ERROR pack {i} failed to apply" for i in range(4)]
    text = "\n".join(["2026-11-23T09:59:59Z stylus-operator: ok", *lines])
    node.logs.sources["var/log/stylus-operator.log"] = lambda: text
    items = c.get(ERROR_LOGS, params={"logCount": "3"}, expect=200).json()["items"]
    assert [i["message"] for i in items] == [f"ERROR pack {i} failed to apply" for i in (1, 2, 3)]
    first = items[0]
    assert first["severity"] == "Error" and first["source"] == {"component": "stylus-operator", "host": "edge-node-1"}
    assert first["involvedObject"] == {"kind": "EdgeHost", "name": "edge-node-1", "uid": node.state.uid}
    assert len({i["metadata"]["uid"] for i in items}) == 3


def test_error_logs_report_a_failed_install(tmp_path: Path, clock: ManualClock) -> None:
    """The installer's failure line in the journal is an ``InstallFailed`` event (read here straight from the
    node's log sources: a node whose install failed has no Local UI to ask)."""
    # The medium stands for an ISO that boots the automatic installer (the interactive one never gets to fail).
    with Lab(1, tmp_path / "lab", clock, installed=False, tick_interval=None, speed=60.0, media="automatic") as lab:
        node = lab.nodes[0]
        node.apply(NodeFaults(install_error="target disk /dev/sda is too small"))
        node.machine.insert_media("file:///tmp/installer.iso")
        node.machine.power_on()
        for _ in range(200):
            clock.advance(5)
            if node.machine.install_failure() is not None and any(
                "failed installing" in line for line in node.machine.journal()
            ):
                break
        items = node.logs.error_events(10)["items"]
        localui_spec.validate_definition("v1Events", {"items": items})
        failed = [i for i in items if i["reason"] == "InstallFailed"]
        assert len(failed) == 1, items  # in the journal and the installer log, reported once
        assert "target disk /dev/sda is too small" in failed[0]["message"]
        assert failed[0]["source"]["component"] == "kairos-agent"
