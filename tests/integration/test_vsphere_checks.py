"""vSphere preflight checks against the simulator: inventory, space, capacity, network, privileges, zone tags, VMs."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from tests.integration.vcsim_peer import (  # noqa: F401 - fixtures
    CLUSTER,
    DATACENTER,
    EXISTING_VMS,
    PASSWORD,
    VcsimServer,
    vcsim_binary_fixture,
    vcsim_fixture,
)
from wizard.core.checks.catalog import CATALOG, CheckResult, CheckSeverity, Outcome
from wizard.core.project import (
    AddressMode,
    FileRef,
    Files,
    Network,
    Node,
    Project,
    Provider,
    ProviderType,
    VmMode,
    VmSpec,
    VsphereSettings,
)
from wizard.core.trust import TrustStore
from wizard.providers.vsphere import checks
from wizard.providers.vsphere.session import connect
from wizard.providers.vsphere.tagging import REGION_CATEGORY, ZONE_CATEGORY, TaggingClient, tagging_client

pytestmark = pytest.mark.vsphere

ISO_SIZE = 3 * 1024 * 1024


@pytest.fixture
def trust(tmp_path: Path) -> TrustStore:
    return TrustStore(tmp_path / "config")


def project_for(settings: VsphereSettings, tmp_path: Path, vm_names: tuple[str, ...] = ()) -> Project:
    iso = tmp_path / "pma.iso"
    if not iso.exists():
        iso.write_bytes(b"\0" * ISO_SIZE)
    nodes = tuple(
        Node(
            name=f"node-{i + 1}",
            hostname=f"pma-{i + 1}",
            address_mode=AddressMode.DHCP,
            vm=vm_names[i] if vm_names else "",
        )
        for i in range(max(3, len(vm_names)))
    )
    return Project(
        name="pma",
        provider=Provider(ProviderType.VSPHERE, vsphere=settings),
        nodes=nodes,
        network=Network(vip="10.0.0.50"),
        files=Files(iso=FileRef(iso)),
    )


def by_check(results: list[CheckResult]) -> dict[str, list[CheckResult]]:
    out: dict[str, list[CheckResult]] = defaultdict(list)
    for r in results:
        out[r.check].append(r)
    return out


def outcomes(results: list[CheckResult], check: str) -> set[Outcome]:
    return {r.outcome for r in by_check(results)[check]}


def run(settings: VsphereSettings, trust: TrustStore, project: Project) -> list[CheckResult]:
    return checks.run_checks(settings, PASSWORD, trust, None, project, scheme="http")


def test_catalog_entries_are_complete() -> None:
    ids = [c.id for c in checks.CHECKS]
    assert len(ids) == len(set(ids))
    assert {"vsphere.privileges", "vsphere.datastore-space", "vsphere.capacity", "vsphere.network"} <= set(ids)
    assert {"vsphere.zone-tags", "vsphere.vm-firmware"} <= set(ids)
    assert all(c.step in ("provider", "nodes") and c.remediation and c.title for c in checks.CHECKS)


def test_create_mode_passes_except_zone_tags(vcsim: VcsimServer, trust: TrustStore, tmp_path: Path) -> None:
    settings = vcsim.settings()
    results = run(settings, trust, project_for(settings, tmp_path))
    every = {c.id for c in checks.CHECKS}
    assert {r.check for r in results} == every
    # The simulator's hosts hold only tiny VMs: below the sizing table, a warning for each of CPU/memory and disk.
    for check in every - {"vsphere.zone-tags", "vsphere.vm-size"}:
        assert outcomes(results, check) == {Outcome.PASS}, by_check(results)[check]
    assert outcomes(results, "vsphere.zone-tags") == {Outcome.FAIL}
    size, storage = by_check(results)["vsphere.vm-size"]
    assert CATALOG[size.check].severity is CheckSeverity.WARNING
    assert "below the Small size (8 CPU / 16 GB)" in size.message and "750 GB per node" in storage.message
    tags = by_check(results)["vsphere.zone-tags"][0]
    assert "k8s-region" in tags.message and "k8s-zone" in tags.message and tags.method == ("tagging API at /rest",)
    priv = by_check(results)["vsphere.privileges"][0]
    assert "create mode" in priv.message
    space = by_check(results)["vsphere.datastore-space"][0]
    assert space.details["iso"] == ISO_SIZE
    spec = settings.vm
    assert space.details["vm_disks_and_swap"] == 3 * (spec.os_disk_gb + spec.data_disk_gb + spec.memory_gb) * 1024**3


def test_datastore_space_fails_for_huge_disks(vcsim: VcsimServer, trust: TrustStore, tmp_path: Path) -> None:
    settings = vcsim.settings(vm=VmSpec(cpus=2, memory_gb=1, os_disk_gb=300, data_disk_gb=100_000))
    results = run(settings, trust, project_for(settings, tmp_path))
    space = by_check(results)["vsphere.datastore-space"]
    assert [r.outcome for r in space] == [Outcome.FAIL]
    assert space[0].details["needed"] > space[0].details["free"]


def test_capacity_fails_for_the_documented_default_size(vcsim: VcsimServer, trust: TrustStore, tmp_path: Path) -> None:
    # The simulated hosts have 2 logical CPUs and 4 GiB each: the appliance's 8 vCPU / 16 GB do not fit.
    settings = vcsim.settings(vm=VmSpec(os_disk_gb=10, data_disk_gb=10))
    results = run(settings, trust, project_for(settings, tmp_path))
    cap = by_check(results)["vsphere.capacity"]
    assert [r.outcome for r in cap] == [Outcome.FAIL]
    assert "8 vCPU per VM" in cap[0].message and "3 × 16 GB" in cap[0].message


def test_missing_network_fails_with_the_choices(vcsim: VcsimServer, trust: TrustStore, tmp_path: Path) -> None:
    settings = vcsim.settings(network="Storage VLAN")
    results = run(settings, trust, project_for(settings, tmp_path))
    net = by_check(results)["vsphere.network"]
    assert [r.outcome for r in net] == [Outcome.FAIL]
    assert "Storage VLAN" in net[0].message and "DC0_DVPG0" in net[0].remediation


def test_wrong_inventory_names_are_reported(vcsim: VcsimServer, trust: TrustStore, tmp_path: Path) -> None:
    settings = vcsim.settings(cluster="nope")
    results = run(settings, trust, project_for(settings, tmp_path))
    inv = by_check(results)["vsphere.inventory"]
    assert inv[0].outcome is Outcome.ERROR and CLUSTER in inv[0].remediation
    assert outcomes(results, "vsphere.capacity") == {Outcome.ERROR}


def test_unreachable_vcenter_fails_login_and_marks_the_rest(
    vcsim: VcsimServer, trust: TrustStore, tmp_path: Path
) -> None:
    settings = vcsim.settings()
    vcsim.stop()
    results = run(settings, trust, project_for(settings, tmp_path))
    assert by_check(results)["vsphere.login"][0].outcome is Outcome.FAIL
    assert "refused" in by_check(results)["vsphere.login"][0].message
    assert all(r.outcome is Outcome.ERROR for r in results if r.check != "vsphere.login")
    assert len(results) == len(checks.CHECKS)


def test_existing_mode_checks_firmware_and_spec(vcsim: VcsimServer, trust: TrustStore, tmp_path: Path) -> None:
    settings = vcsim.settings(vm_mode=VmMode.EXISTING)
    project = project_for(settings, tmp_path, vm_names=(*EXISTING_VMS, "no-such-vm"))
    results = run(settings, trust, project)
    fw = {r.target: r for r in by_check(results)["vsphere.vm-firmware"]}
    assert fw["node-1"].outcome is Outcome.FAIL and "bios" in fw["node-1"].message
    assert fw["node-3"].outcome is Outcome.FAIL and "no VM named no-such-vm" in fw["node-3"].message
    spec = {r.target: r for r in by_check(results)["vsphere.vm-spec"]}
    assert spec["node-1"].outcome is Outcome.FAIL and "data disk" in spec["node-1"].message
    assert outcomes(results, "vsphere.privileges") == {Outcome.PASS}
    assert "existing mode" in by_check(results)["vsphere.privileges"][0].message


def _tag(client: TaggingClient, category: str, name: str, types: tuple[str, ...]) -> str:
    existing = client.category_by_name(category)
    cat = existing.id if existing else client.create_category(category, associable_types=types)
    return client.create_tag(name, cat)


def test_zone_tags_present_after_tagging(vcsim: VcsimServer, trust: TrustStore, tmp_path: Path) -> None:
    settings = vcsim.settings()
    project = project_for(settings, tmp_path)
    with connect(settings, PASSWORD, trust, None, scheme="http") as session:
        dc = session.datacenter()
        cluster = session.cluster(dc)
        hosts = list(cluster.host)
        last_host = str(hosts[-1].name)
        with tagging_client(session, PASSWORD) as client:
            assert client.flavour == "rest"  # vcsim 0.24.2 has no /api
            region = _tag(client, REGION_CATEGORY, "eu-west", ("Datacenter",))
            client.attach(region, "Datacenter", dc._moId)
            # Zone tags on the hosts (not the cluster): all but the last host first.
            zone = _tag(client, ZONE_CATEGORY, "zone-a", ("ClusterComputeResource", "HostSystem"))
            for h in hosts[:-1]:
                client.attach(zone, "HostSystem", h._moId)
    partial = by_check(run(settings, trust, project))["vsphere.zone-tags"]
    assert {r.outcome for r in partial} == {Outcome.PASS, Outcome.FAIL}
    assert any(r.outcome is Outcome.FAIL and last_host in r.message for r in partial)
    with (
        connect(settings, PASSWORD, trust, None, scheme="http") as session,
        tagging_client(session, PASSWORD, flavour="rest") as client,
    ):
        client.attach(zone, "HostSystem", hosts[-1]._moId)
    full = by_check(run(settings, trust, project))["vsphere.zone-tags"]
    assert [r.outcome for r in full] == [Outcome.PASS, Outcome.PASS], full
    assert "k8s-region=eu-west" in full[0].message and DATACENTER in full[0].target


def test_zone_tag_on_cluster_and_bad_tag_name(vcsim: VcsimServer, trust: TrustStore, tmp_path: Path) -> None:
    settings = vcsim.settings()
    with connect(settings, PASSWORD, trust, None, scheme="http") as session:
        dc = session.datacenter()
        cluster = session.cluster(dc)
        with tagging_client(session, PASSWORD) as client:
            client.attach(_tag(client, REGION_CATEGORY, "bad name!", ()), "Datacenter", dc._moId)
            client.attach(_tag(client, ZONE_CATEGORY, "zone-b", ()), "ClusterComputeResource", cluster._moId)
    results = by_check(run(settings, trust, project_for(settings, tmp_path)))["vsphere.zone-tags"]
    assert [r.outcome for r in results] == [Outcome.FAIL, Outcome.PASS]
    assert "do not match" in results[0].message
    assert f"cluster {CLUSTER} is tagged k8s-zone=zone-b" == results[1].message
