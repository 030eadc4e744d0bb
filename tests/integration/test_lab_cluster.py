"""Management-cluster creation on the lab's Local UI: archive, variables, create checks and the deployment timeline."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import CONTENT_SYNC_DELAY
from tests.integration.localui_client import SpecCheckedClient
from wizard.lab import Lab, ManualClock
from wizard.lab.cluster import EMBEDDED_ARCHIVE_PATH, PROFILE_UID, REBOOT_WINDOW, VARIABLES

pytestmark = pytest.mark.lab

Clients = Callable[[int], SpecCheckedClient]

TIMELINE = 1000.0  # seconds from create to Running in these tests
VIP = "10.20.30.40"
EMBEDDED = "/v1/edge-mgmt/clusters/archive/embedded/details"
OVERRIDDEN = "/v1/edge-mgmt/clusters/archive/overridden/details"
VALIDATE = "/v1/edge-mgmt/cluster/profiles/variables/validate"
CLUSTER = "/v1/edge-mgmt/cluster"
DETAILS = "/v1/edge-mgmt/cluster/details"
LIFECYCLE = "/v1/edge-mgmt/events/lifecycle"
NODES = "/v1/edge-mgmt/clusters/current/nodes"
GENERATE = "/v1/edge-mgmt/edgehosts/current/link/generate-token"
LINK = "/v1/edge-mgmt/edgehosts/current/link"
UPLOAD = "/v1/edge-mgmt/edgehosts/current/actions/upload-content"
HOST = "/v1/edge-mgmt/edgehosts/current"


@pytest.fixture
def lab(tmp_path: Path, clock: ManualClock) -> Iterator[Lab]:
    """Overrides the shared fixture: no background ticker, so only ``lab.tick()`` changes reachability."""
    with Lab(
        3,
        tmp_path / "lab",
        clock,
        content_sync_delay=CONTENT_SYNC_DELAY,
        socket_timeout=10.0,
        cluster_timeline=TIMELINE,
        tick_interval=None,
    ) as started:
        yield started


def logged_in(client: Clients, index: int) -> SpecCheckedClient:
    c = client(index)
    c.login()
    return c


def prepare(client: Clients, clock: ManualClock, *, link: int = 2) -> list[SpecCheckedClient]:
    """Log in everywhere, link ``link`` followers to node 0, upload content and let it sync."""
    clients = [logged_in(client, i) for i in range(3)]
    for follower in clients[1 : 1 + link]:
        token = clients[0].post(GENERATE, expect=200).json()["token"]
        follower.post(LINK, json={"token": token}, expect=200)
    clients[0].post(UPLOAD, files={"uploadFile": ("bundle.tar.zst", b"x" * 4096)}, expect=201)
    clock.advance(CONTENT_SYNC_DELAY)
    return clients


def host_entry(lab: Lab, index: int) -> dict[str, Any]:
    state = lab.nodes[index].state
    return {"hostUid": state.uid, "hostAddress": state.ip, "hostName": state.hostname}


def cluster_body(
    lab: Lab,
    *,
    hosts: list[int] | None = None,
    vip: str = VIP,
    variables: dict[str, str] | None = None,
    name: str = "palette-mgmt",
) -> dict[str, Any]:
    values = {"ociPackRegistryPassword": "s3cret-Pass"} if variables is None else variables
    return {
        "metadata": {"name": name, "labels": {}},
        "spec": {
            "archiveUploadPath": EMBEDDED_ARCHIVE_PATH,
            "profileVariables": [{"name": k, "profileUid": PROFILE_UID, "value": v} for k, v in values.items()],
            "cloudConfig": {
                "spec": {
                    "clusterConfig": {
                        "controlPlaneEndpoint": {"type": "VIP", "host": vip},
                        "ntpServers": ["pool.ntp.org"],
                        "sshKeys": [],
                        "overlayNetworkConfiguration": {"enable": False, "cidr": ""},
                        "staticIp": False,
                    },
                    "machinePoolConfig": [
                        {
                            "name": "control-plane-pool",
                            "isControlPlane": True,
                            "useControlPlaneAsWorker": True,
                            "machinePoolProperties": {"archType": "amd64"},
                            "hosts": [host_entry(lab, i) for i in (hosts if hosts is not None else [0, 1, 2])],
                        }
                    ],
                }
            },
            "scheduleAt": "",
        },
    }


# -- Archive and variables -----------------------------------------------------------------------------------------


def test_archive_details_need_content(client: Clients, clock: ManualClock) -> None:
    c = logged_in(client, 0)
    assert "upload" in c.get(EMBEDDED, expect=404).json()["message"]
    c.get(OVERRIDDEN, expect=404)
    c.post(UPLOAD, files={"uploadFile": ("bundle.tar.zst", b"x")}, expect=201)
    body = c.get(EMBEDDED, expect=200).json()
    assert body["archiveUploadPath"] == EMBEDDED_ARCHIVE_PATH
    (profile,) = body["clusterProfileDetails"]
    assert profile["profileUid"] == PROFILE_UID and profile["profileName"] == "palette-management-appliance"
    assert profile["packs"] and all({"name", "version", "values"} <= set(p) for p in profile["packs"])
    variables = {v["displayName"]: v for v in profile["variables"]}
    assert variables["Pod CIDR"]["defaultValue"] == "100.64.0.0/18" and variables["Pod CIDR"]["regex"]
    assert variables["Service CIDR"]["defaultValue"] == "100.64.64.0/18"
    password = variables["OCI Pack Registry Password"]
    assert password["required"] and password["isSensitive"] and "defaultValue" not in password
    assert variables["Storage Pool Drive"]["defaultValue"] == "/dev/sdb"
    assert variables["CSI Placement Count"]["defaultValue"] == variables["Mongo Replicas"]["defaultValue"] == "3"
    assert variables["In Cluster Registry"]["defaultValue"] == "True"
    for optional in ("Ubuntu Pro Token", "Image Pull Secret"):
        assert not variables[optional]["required"] and variables[optional]["isSensitive"]
    c.get(OVERRIDDEN, expect=404)  # only upload-clusterconfig would make one


def test_validate_variables(client: Clients) -> None:
    c = logged_in(client, 0)
    c.post(VALIDATE, json={"variables": []}, expect=400)  # no archive before the content upload
    c.post(UPLOAD, files={"uploadFile": ("bundle.tar.zst", b"x")}, expect=201)

    def check(name: str, value: str | None) -> dict[str, Any]:
        var: dict[str, Any] = {"name": name, "profileUid": PROFILE_UID}
        if value is not None:
            var["value"] = value
        body = {"archiveUploadPath": EMBEDDED_ARCHIVE_PATH, "variables": [var]}
        results = c.post(VALIDATE, json=body, expect=200).json()["variables"]
        result: dict[str, Any] = next(r for r in results if r["name"] == name)
        return result

    assert check("podCidr", "10.0.0.0/16")["isValid"] is True
    bad = check("podCidr", "10.0.0.0/33")
    assert bad["isValid"] is False and bad["regex"] and bad["validationFailureReason"]
    assert check("serviceCidr", "10.0.0.1/16")["isValid"] is False  # host bits set
    assert check("csiPlacementCount", "3")["isValid"] and not check("csiPlacementCount", "2")["isValid"]
    assert not check("inClusterRegistry", "yes")["isValid"]
    assert not check("ociPackRegistryPassword", "")["isValid"]
    assert "required" in check("ociPackRegistryPassword", None)["validationFailureReason"]
    assert check("ubuntuProToken", "")["isValid"]  # optional
    assert not check("imagePullSecret", "not base64!")["isValid"]
    unknown = check("noSuchVariable", "x")
    assert unknown["isValid"] is False and "unknown" in unknown["validationFailureReason"]
    # A required variable without default that was not sent is reported as missing.
    results = c.post(VALIDATE, json={"variables": [{"name": "podCidr", "value": "10.0.0.0/16"}]}, expect=200).json()
    missing = {r["name"]: r for r in results["variables"]}["ociPackRegistryPassword"]
    assert missing["isValid"] is False
    c.post(VALIDATE, json={"archiveUploadPath": "/elsewhere.tgz", "variables": []}, expect=400)


# -- Create refusals -----------------------------------------------------------------------------------------------


def test_create_refusals(lab: Lab, client: Clients, clock: ManualClock) -> None:
    leader, follower, _ = prepare(client, clock)

    def refused(body: dict[str, Any], fragment: str, c: SpecCheckedClient = leader) -> None:
        message = c.post(CLUSTER, json=body, expect=400).json()["message"]
        assert fragment in message, message

    refused(cluster_body(lab, vip="127.0.0.1"), "already the address of a host")
    refused(cluster_body(lab, vip="10.20.30"), "IPv4")
    refused(cluster_body(lab, vip="vip.example.com"), "IPv4")
    refused(cluster_body(lab, hosts=[0, 1]), "odd number")
    refused(cluster_body(lab, variables={}), "OCI Pack Registry Password is required")
    refused(cluster_body(lab, variables={"ociPackRegistryPassword": "p", "podCidr": "1.2.3.0/99"}), "Pod CIDR")
    refused(cluster_body(lab, variables={"ociPackRegistryPassword": "p", "bogus": "1"}), "unknown variable")
    refused(cluster_body(lab, variables={"ociPackRegistryPassword": "p", "mongoReplicas": "1"}), "must equal")
    refused(cluster_body(lab, name="Bad_Name"), "DNS label")
    wrong_path = cluster_body(lab)
    wrong_path["spec"]["archiveUploadPath"] = "/tmp/other.tgz"
    refused(wrong_path, "archiveUploadPath")
    stranger = cluster_body(lab)
    stranger["spec"]["cloudConfig"]["spec"]["machinePoolConfig"][0]["hosts"][2]["hostUid"] = "edge-stranger"
    refused(stranger, "not linked")
    moved = cluster_body(lab)
    moved["spec"]["cloudConfig"]["spec"]["machinePoolConfig"][0]["hosts"][1]["hostAddress"] = "10.9.9.9"
    refused(moved, "is at")
    refused(cluster_body(lab), "create the cluster on the leader", follower)
    leader.post(CLUSTER, json={"metadata": {"name": "x"}}, expect=400)  # the spec requires machine pools
    leader.get(DETAILS, expect=404)
    leader.get(CLUSTER, expect=404)
    assert not any(n.state.has_cluster for n in lab.nodes)


def test_unlinked_host_is_refused(lab: Lab, client: Clients, clock: ManualClock) -> None:
    leader = prepare(client, clock, link=1)[0]
    r = leader.post(CLUSTER, json=cluster_body(lab), expect=400)
    assert lab.nodes[2].state.uid in r.json()["message"] and "not linked" in r.json()["message"]


def test_content_must_be_synced(lab: Lab, client: Clients, clock: ManualClock) -> None:
    leader, f1, _ = (logged_in(client, i) for i in range(3))
    f1.post(LINK, json={"token": leader.post(GENERATE, expect=200).json()["token"]}, expect=200)
    leader.post(UPLOAD, files={"uploadFile": ("bundle.tar.zst", b"x")}, expect=201)
    r = leader.post(CLUSTER, json=cluster_body(lab, hosts=[0]), expect=202)  # the leader has its own content
    assert r.json()["message"]
    r = leader.post(CLUSTER, json=cluster_body(lab, hosts=[0]), expect=400)
    assert "already part of cluster" in r.json()["message"]


def test_follower_content_not_synced_is_refused(lab: Lab, client: Clients) -> None:
    leader, f1, f2 = (logged_in(client, i) for i in range(3))
    for f in (f1, f2):
        f.post(LINK, json={"token": leader.post(GENERATE, expect=200).json()["token"]}, expect=200)
    leader.post(UPLOAD, files={"uploadFile": ("bundle.tar.zst", b"x")}, expect=201)
    r = leader.post(CLUSTER, json=cluster_body(lab), expect=400)
    assert "not synced" in r.json()["message"]


# -- Happy path ----------------------------------------------------------------------------------------------------


def refused_connection(lab: Lab, index: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", lab.nodes[index].server.port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_create_and_deploy(lab: Lab, client: Clients, clock: ManualClock) -> None:
    clients = prepare(client, clock)
    leader = clients[0]
    leader.get(DETAILS, expect=404)
    events = leader.get(LIFECYCLE, expect=200).json()
    assert events["clusterEvents"] == [] and events["edgeHostEvents"] == [] and events["expectedOrder"]
    assert leader.get(NODES, expect=200).json() == {"nodes": []}

    leader.post(CLUSTER, json=cluster_body(lab), expect=202)
    leader.post(CLUSTER, json=cluster_body(lab), expect=400)  # a second create
    stored = leader.get(CLUSTER, expect=200).json()
    assert stored["metadata"]["name"] == "palette-mgmt"
    password = next(v for v in stored["spec"]["profileVariables"] if v["name"] == "ociPackRegistryPassword")
    assert password["value"] == ""  # sensitive values are not echoed back

    seen_cluster: list[str] = []
    seen_host: list[str] = []

    def observe(c: SpecCheckedClient) -> dict[str, Any]:
        lifecycle = c.get(LIFECYCLE, expect=200).json()
        cluster_types = [e["type"] for e in lifecycle["clusterEvents"]]
        host_types = [e["type"] for e in lifecycle["edgeHostEvents"]]
        assert cluster_types[: len(seen_cluster)] == seen_cluster  # events only grow, in order
        assert host_types[: len(seen_host)] == seen_host
        seen_cluster[:], seen_host[:] = cluster_types, host_types
        order = {o["category"]: [x["type"] for x in o["conditionsOrder"]] for o in lifecycle["expectedOrder"]}
        assert cluster_types == order["Cluster"][: len(cluster_types)]
        assert host_types == order["EdgeHost"][: len(host_types)]
        details: dict[str, Any] = c.get(DETAILS, expect=200).json()
        return details

    details = observe(leader)
    status = details["status"]
    assert status["clusterState"] == "Provisioning" and "health" not in status and "kubeconfig" not in status
    assert details["spec"]["vip"] == VIP and len(details["spec"]["hostIDs"]) == 3
    assert [n["nodeState"] for n in status["nodePools"][0]["nodes"]] == ["Provisioning"] * 3
    for c in clients:  # every member reports the same cluster and is now in its cluster phase
        assert c.get(DETAILS, expect=200).json()["metadata"]["id"] == details["metadata"]["id"]
        assert c.get(HOST, expect=200).json()["status"]["isClusterPhase"] is True

    clock.advance(0.3 * TIMELINE)
    lab.tick()
    assert observe(leader)["status"]["isRebootPending"] is True

    clock.advance((REBOOT_WINDOW[0] - 0.3) * TIMELINE)
    lab.tick()
    for i in range(3):
        assert refused_connection(lab, i)
    with pytest.raises(httpx.ConnectError):
        leader.get(DETAILS)
    ports = [n.server.port for n in lab.nodes]

    clock.advance((REBOOT_WINDOW[1] - REBOOT_WINDOW[0]) * TIMELINE)
    lab.tick()
    assert [n.server.port for n in lab.nodes] == ports and not any(refused_connection(lab, i) for i in range(3))
    details = observe(leader)  # the session outlived the reboot
    assert details["status"]["clusterState"] == "Provisioning" and details["status"]["isRebootPending"] is False

    clock.advance(0.2 * TIMELINE)  # 70 %: the leader and then the followers have joined
    lab.tick()
    details = observe(leader)
    assert [n["nodeState"] for n in details["status"]["nodePools"][0]["nodes"]] == ["Running"] * 3
    assert len(leader.get(NODES, expect=200).json()["nodes"]) == 3

    clock.advance(0.3 * TIMELINE)
    lab.tick()
    details = observe(clients[2])
    status = details["status"]
    assert status["clusterState"] == "Running" and status["health"] == {"status": "Healthy"}
    assert f"server: https://{VIP}:6443" in status["kubeconfig"] and "kind: Config" in status["kubeconfig"]
    assert seen_cluster[-1] == "ClusterReady" and "Rebooted" in seen_host
    assert all(n.server.running for n in lab.nodes)


def test_background_ticker_restarts_nodes(tmp_path: Path, clock: ManualClock) -> None:
    with Lab(1, tmp_path / "lab", clock, cluster_timeline=TIMELINE, tick_interval=0.02) as lab:
        c = SpecCheckedClient(lab.nodes[0])
        try:
            c.login()
            c.post(UPLOAD, files={"uploadFile": ("bundle.tar.zst", b"x")}, expect=201)
            c.post(CLUSTER, json=cluster_body(lab, hosts=[0]), expect=202)
            clock.advance(REBOOT_WINDOW[0] * TIMELINE)
            wait_for(lambda: not lab.nodes[0].server.running)
            clock.advance((1 - REBOOT_WINDOW[0]) * TIMELINE)
            wait_for(lambda: lab.nodes[0].server.running)
            assert c.get(DETAILS, expect=200).json()["status"]["clusterState"] == "Running"
        finally:
            c.close()


def test_variable_defaults_are_complete() -> None:
    names = [v.name for v in VARIABLES]
    assert len(names) == len(set(names)) == 12
    # Every kind of field the newer API describes: a dropdown, a multiline text, an immutable and a hidden value,
    # each in one of the docs' two form sections.
    assert {v.input_type for v in VARIABLES} == {"text", "dropdown", "multiline"}
    assert any(v.immutable for v in VARIABLES) and any(v.hidden for v in VARIABLES)
    assert {v.section for v in VARIABLES} == {"Cluster Profile Options", "Registry Options"}
    assert all(v.default in v.options for v in VARIABLES if v.options)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)
