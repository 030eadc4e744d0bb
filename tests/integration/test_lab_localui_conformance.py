"""Conformance of the lab's Local UI and of our clients: every operation the lab simulates answers within the
published spec, and every call the wizard makes is one the spec has."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.conftest import CONTENT_SYNC_DELAY
from tests.integration.localui_client import SpecCheckedClient, network_tour
from tests.integration.releases import each_release
from tests.integration.test_lab_localui import (  # the paths and helpers the Local UI tests share
    CONFIGURATIONS,
    DETAILS,
    DOWNLOAD_LOGS,
    ERROR_LOGS,
    GEN_LOGS,
    GEN_STATUS,
    HOST,
    LINK,
    LINK_STATUS,
    LOGIN,
    UNLINK,
    UPLOAD,
    USERDATA,
    generate,
)
from wizard.appliance.localui_spec import LocalUISpec, UnknownOperation
from wizard.core.errors import WizardError
from wizard.lab import Lab, LabNode, ManualClock
from wizard.lab.localui import implemented_operations
from wizard.lab.node import TOKEN_TTL
from wizard.lab.nodelogs import LOG_COLLECT_SECONDS

pytestmark = pytest.mark.lab

# -- Conformance: every operation the lab simulates, every call our clients make -----------------------------------


class _RecordingClient(SpecCheckedClient):
    """Spec-checked (by the parent) and remembering which spec operations it exercised."""

    def __init__(self, node: LabNode, seen: set[tuple[str, str]]) -> None:
        super().__init__(node)
        self.seen = seen

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        op = self.spec.operation(method, urlsplit(path).path)
        self.seen.add((op.method, op.template))
        return super().request(method, path, **kwargs)


@each_release("4.9.36", "4.9.46")  # the last release on the first spec, and one on the newer spec
def test_every_simulated_operation_answers_within_the_spec(lab: Lab, clock: ManualClock) -> None:
    """A tour through every operation the lab simulates — each refused without a token and answered with one, every
    answer validated against the spec of the release the lab plays — so no simulated operation escapes the
    conformance check."""
    from tests.integration.test_lab_cluster import cluster_body
    from wizard.lab.cluster import EMBEDDED_ARCHIVE_PATH, PROFILE_UID

    seen: set[tuple[str, str]] = set()
    clients = [_RecordingClient(node, seen) for node in lab.nodes]
    served = implemented_operations() & set(lab.appliance.spec.operations())
    try:
        for method, template in sorted(served):
            if (method, template) not in {("GET", "/v1/ping"), ("POST", LOGIN)}:
                clients[0].request(method, template, token=None, expect=401)
        leader, f1, f2 = clients
        leader.get("/v1/ping", token=None, expect=200)
        for c in clients:
            c.login()
        leader.post(f"{LOGIN}?extendedSession=true", json={"username": "kairos", "password": "kairos"}, expect=200)
        leader.post("/v1/users/default/token/renewal", expect=200)
        f2.post("/v1/users/default/password/reset", json={"oldPassword": "kairos", "newPassword": "n3w!"}, expect=204)
        leader.get("/v1/users/current", expect=200)
        leader.get(HOST, expect=200)
        leader.get("/v1/edge-mgmt/settings", expect=200)
        leader.get(LINK_STATUS, expect=404)
        for follower in (f1, f2):
            follower.post(LINK, json={"token": generate(leader)}, expect=200)
        leader.get(LINK_STATUS, expect=200)
        leader.post(UNLINK, params={"peerId": lab.nodes[2].state.uid}, expect=200)
        f2.post(LINK, json={"token": generate(leader)}, expect=200)
        leader.get(DETAILS, expect=404)
        leader.get("/v1/edge-mgmt/clusters/archive/embedded/details", expect=404)
        leader.post(UPLOAD, files={"uploadFile": ("bundle.tar.zst", b"x" * 4096)}, expect=201)
        leader.get(DETAILS, expect=200)
        leader.get("/v1/edge-mgmt/clusters/archive/embedded/details", expect=200)
        leader.get("/v1/edge-mgmt/clusters/archive/overridden/details", expect=404)
        variables = [{"name": "podCidr", "profileUid": PROFILE_UID, "value": "10.0.0.0/33"}]
        body = {"archiveUploadPath": EMBEDDED_ARCHIVE_PATH, "variables": variables}
        leader.post("/v1/edge-mgmt/cluster/profiles/variables/validate", json=body, expect=200)
        clock.advance(CONTENT_SYNC_DELAY)
        cluster_get = ("/v1/edge-mgmt/cluster", "/v1/edge-mgmt/cluster/details", "/v1/edge-mgmt/events/lifecycle")
        leader.get(cluster_get[0], expect=404)
        leader.post("/v1/edge-mgmt/cluster", json=cluster_body(lab), expect=202)
        for path in cluster_get:
            leader.get(path, expect=200)
        if leader.spec.has("PUT", "/v1/edge-mgmt/cluster/settings"):
            settings = {"ntpServers": ["ntp.example.com"], "sshKeys": []}
            leader.request("PUT", "/v1/edge-mgmt/cluster/settings", json=settings, expect=202)
        if f1.spec.has("GET", "/v1/edge-mgmt/network/config-options"):
            network_tour(f1, clock.advance)
        leader.get("/v1/edge-mgmt/clusters/current/nodes", expect=200)
        for path in (
            "/v1/edge-mgmt/cluster/applications",
            "/v1/edge-mgmt/cluster/registry/content/details",
            "/v1/edge-mgmt/cluster/registry/content/sync-status/details",
            "/v1/edge-mgmt/cluster/registry/health",
        ):
            r = leader.get(path)  # the cluster still deploys: an answer or a documented refusal, never a 5xx
            assert r.status_code < 500, (path, r.status_code, r.text)
        leader.post(GEN_LOGS, expect=202)
        leader.get(GEN_STATUS, expect=200)
        clock.advance(LOG_COLLECT_SECONDS)
        leader.get(DOWNLOAD_LOGS, expect=200)
        leader.get(ERROR_LOGS, params={"logCount": "10"}, expect=200)
        for path in (USERDATA, CONFIGURATIONS, CONFIGURATIONS + "/status"):
            f1.get(path, expect=200)
        proxy = {"httpProxy": "http://proxy.lab:3128", "httpsProxy": "", "noProxy": "localhost", "caCerts": []}
        f1.request("PUT", CONFIGURATIONS, json=proxy, expect=200)
        f1.request(
            "PUT",
            USERDATA,
            json={"hostName": "edge-a", "network": {"interfaces": {"eth0": {"type": "dhcp"}}}},
            expect=200,
        )
        f2.post(USERDATA, json={"hostName": "edge-b"}, expect=201)
        leader.post("/v1/users/default/logout", expect=200)
        leader.get(HOST, expect=401)
    finally:
        for c in clients:
            c.close()
    assert seen >= served, sorted(served - seen)


def _local_ui_paths_in_the_wizard(spec: LocalUISpec) -> set[str]:
    """Every Local UI spec template that a ``P_… = "/v1/…"`` constant of the wizard names: its client calls."""
    import wizard

    root = Path(wizard.__file__).parent
    found: set[str] = set()
    for source in root.rglob("*.py"):
        if "lab" in source.relative_to(root).parts or "ui" in source.relative_to(root).parts[:1]:
            continue
        for path in re.findall(r'^P_[A-Z_]+ = "(/v1/[^"]+)"', source.read_text(encoding="utf-8"), re.M):
            for method in ("GET", "POST", "PUT"):
                with contextlib.suppress(UnknownOperation):
                    found.add(spec.operation(method, path).template)
    return found


@each_release("4.9.36", "4.9.46")
def test_every_client_call_is_within_the_spec(lab: Lab, clock: ManualClock, tmp_path: Path) -> None:
    """The wizard's own Local UI calls — every method of its client and the calls other modules make through it —
    against the lab with every request and response checked by the spec of the release it plays, until every Local
    UI path the wizard names (``P_…`` constants anywhere in the package) that this spec has has been exercised."""
    from tests.integration.test_lab_cluster import cluster_body
    from tests.integration.test_localui_client import make_harness
    from wizard.appliance.archive import P_UPDATE_DETAILS
    from wizard.appliance.bundles import MultipartBody
    from wizard.appliance.cluster import P_CLUSTER_SETTINGS
    from wizard.appliance.configure import P_CONFIGURATIONS, P_CONFIGURATIONS_STATUS, P_USERDATA, NodeConfiguration
    from wizard.appliance.hostsync import sync_status
    from wizard.appliance.localui import P_LOGIN as CLIENT_LOGIN
    from wizard.appliance.localui import P_SETTINGS, P_USER
    from wizard.appliance.network import P_BONDS, P_CONFIG_OPTIONS, P_INTERFACES, P_MANAGEMENT, P_VLANS
    from wizard.appliance.packs import registry_content, registry_sync_items
    from wizard.appliance.staging import P_LOGOUT
    from wizard.core.cancel import CancelToken
    from wizard.install.steps.console import P_APPLICATIONS
    from wizard.install.support import collect_node_diagnostics
    from wizard.lab.cluster import EMBEDDED_ARCHIVE_PATH, PROFILE_UID

    harness = make_harness(lab, clock, tmp_path / "config")
    cancel = CancelToken()
    bundle = tmp_path / "bundle.tar.zst"
    bundle.write_bytes(b"z" * 8192)
    signature = tmp_path / "bundle.tar.sig.bin"
    signature.write_bytes(b"s" * 64)
    with (
        harness.connector.open(harness.endpoint(0), cancel) as leader,
        harness.connector.open(harness.endpoint(1), cancel) as follower,
        harness.connector.open(harness.endpoint(2), cancel) as third,
    ):
        assert leader.ping()
        assert leader.host_info()
        assert leader.link_status() is None
        assert leader.uploaded_content() is None and leader.archive_details() is None
        assert leader.cluster_configuration() is None and leader.cluster_status() is None
        follower.link(leader.generate_link_token().token)
        third.link(leader.generate_link_token().token)
        body = MultipartBody({"uploadFile": bundle, "signature": signature})
        leader.upload_content(body.stream(cancel), content_type=body.content_type, length=len(body))
        assert leader.uploaded_content() is not None
        details = leader.archive_details()
        assert details is not None and details.path == EMBEDDED_ARCHIVE_PATH
        checks = leader.validate_variables(
            EMBEDDED_ARCHIVE_PATH, [{"name": "podCidr", "profileUid": PROFILE_UID, "value": "10.1.0.0/16"}]
        )
        assert any(c.name == "podCidr" and c.valid for c in checks)
        clock.advance(CONTENT_SYNC_DELAY)
        assert leader.create_cluster(cluster_body(lab))
        assert leader.cluster_configuration() is not None
        assert leader.cluster_status() is not None
        if lab.appliance.spec.has("PUT", P_CLUSTER_SETTINGS):
            leader.request("PUT", P_CLUSTER_SETTINGS, json={"ntpServers": [], "sshKeys": []}, ok=(202,))
        if lab.appliance.spec.has("GET", P_UPDATE_DETAILS):
            _day2_calls(leader, clock, tmp_path, cancel)
        for path in (P_CONFIG_OPTIONS, P_INTERFACES, P_BONDS, P_VLANS, P_MANAGEMENT):  # the network step's reads
            if lab.appliance.spec.has("GET", path):
                third.request("GET", path)
        assert leader.lifecycle_events().expected
        for path in (P_APPLICATIONS, P_USER, P_SETTINGS):  # the client's plain GETs (no typed method)
            leader.request("GET", path, ok=(200, 404), missing_ok=True)
        with contextlib.suppress(WizardError):  # the registry answers once the cluster runs; the call is what counts
            registry_content(leader)
        assert sync_status(follower) == ([], "registry not installed")  # PE-9263's per-host look
        with contextlib.suppress(WizardError):
            registry_sync_items(leader)
        clock.advance(TOKEN_TTL - 60)
        leader.renew()
        third.reset_password("An0ther-pass")
        diag = collect_node_diagnostics(leader, "edge-node-1", cancel, poll=0.01, clock=_advancing(clock))
        assert diag.logs is not None and diag.error_logs == {"items": []}, diag.problems
        # The post-install configuration calls (the reboot it starts comes after this test's last request).
        for path in (P_USERDATA, P_CONFIGURATIONS, P_CONFIGURATIONS_STATUS):
            assert follower.request("GET", path) is not None
        follower.request("PUT", P_CONFIGURATIONS, json=NodeConfiguration("edge-node-2").configurations())
        follower.request("PUT", P_USERDATA, json=NodeConfiguration("edge-node-2b").user_data("eth0", {}))
        leader.request("POST", P_LOGOUT)  # as the staging session ends its token (no body, bare token)
    seen = {lab.appliance.spec.operation(e.method, e.path).template for e in harness.seen}
    assert CLIENT_LOGIN in seen
    wizard_paths = _local_ui_paths_in_the_wizard(lab.appliance.spec)
    assert len(wizard_paths) >= 20, wizard_paths
    assert wizard_paths <= seen, sorted(wizard_paths - seen)


def _day2_calls(leader: Any, clock: ManualClock, folder: Path, cancel: Any) -> None:
    """The upgrade's calls (the newer API): a newer release's bundle uploaded, its update archive read, rejected,
    uploaded again and applied; the cluster's certificates and machine pools read."""
    from wizard.appliance.archive import (
        P_PROFILES,
        UpdateArchive,
        cluster_certificates,
        create_pool,
        machine_pools,
        reject_update,
        set_pool_hosts,
        submit_update,
        update_archive,
        update_configuration,
    )
    from wizard.appliance.bundles import MultipartBody
    from wizard.appliance.cluster import answer_variables
    from wizard.appliance.upgrade import archive_version
    from wizard.appliance.versions import Version
    from wizard.lab.artifacts import content_bundle

    newer = content_bundle(folder / "core-content-9.9.9.tar.zst", "9.9.9", size=4096)

    def upload() -> UpdateArchive:
        body = MultipartBody({"uploadFile": newer})
        leader.upload_content(body.stream(cancel), content_type=body.content_type, length=len(body))
        assert update_archive(leader) is None  # parsed once the content has synced
        clock.advance(CONTENT_SYNC_DELAY)
        found = update_archive(leader)
        assert found is not None and archive_version(found.raw) == Version(9, 9, 9)
        return found

    upload()
    reject_update(leader)
    assert update_archive(leader) is None
    archive = upload()
    assert cluster_certificates(leader) is not None
    (pool,) = machine_pools(leader)
    assert pool["name"] == "control-plane-pool" and len(pool["hosts"]) == 3
    set_pool_hosts(leader, pool, [])  # the pool as it is: nothing joins
    create_pool(leader, "worker-pool", [])  # a worker pool, empty until a node is added
    assert [p["name"] for p in machine_pools(leader)] == ["control-plane-pool", "worker-pool"]
    answers = answer_variables(archive.details, {}, {"ociPackRegistryPassword": "s3cret-Pass"})
    config = update_configuration(leader.cluster_configuration(), "palette-mgmt", archive.details.path, answers)
    assert submit_update(leader, "palette-mgmt", archive.details.path, config) == "cluster/{name}"
    # The reference's reading applies an archive with the whole configuration: the other call says so.
    refused = leader.request("PUT", P_PROFILES, json={"spec": {"archiveUploadPath": archive.details.path}}, ok=(400,))
    assert refused is not None and "PUT /v1/edge-mgmt/cluster/{clusterName}" in refused.text


def _advancing(clock: ManualClock) -> Callable[[], float]:
    """A monotonic clock for a poll loop that also moves the lab's manual clock, so a log collection completes."""

    def now() -> float:
        clock.advance(1.0)
        return clock()

    return now
