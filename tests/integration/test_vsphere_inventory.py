"""The vSphere page's inventory read from the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.vcsim_peer import (  # noqa: F401 - fixtures
    CLUSTER,
    DATACENTER,
    DATASTORE,
    EXISTING_VMS,
    HOSTS,
    NETWORK,
    PASSWORD,
    PORTGROUP,
    VcsimServer,
    run_job,
    vcsim_binary_fixture,
    vcsim_fixture,
)
from wizard.core.trust import TrustStore
from wizard.providers.vsphere.inventory import load_inventory
from wizard.providers.vsphere.jobs import PrepareVmJob

pytestmark = pytest.mark.vsphere


def test_inventory_lists_everything_the_page_offers(vcsim: VcsimServer, tmp_path: Path) -> None:
    trust = TrustStore(tmp_path / "config")
    settings = vcsim.settings()
    run_job(PrepareVmJob(settings, PASSWORD, trust, None, node="node-1", vm_name="inv-vm", index=1, scheme="http"))
    inv = load_inventory(settings, PASSWORD, trust, None, scheme="http")
    assert [d.name for d in inv.datacenters] == [DATACENTER]
    (cluster,) = inv.clusters
    assert (cluster.name, cluster.datacenter, cluster.drs) == (CLUSTER, DATACENTER, True)
    assert sorted(cluster.hosts) == sorted(HOSTS)
    hosts = {h.name: h for h in inv.hosts}
    assert set(HOSTS) <= set(hosts)
    h0 = hosts[HOSTS[0]]
    assert h0.cluster == CLUSTER and h0.connected and not h0.maintenance and h0.cpu_threads > 0 and h0.memory > 0
    # The cluster's root pool, named by its cluster; the datacenter's VM folder itself has the empty path.
    assert [(p.name, p.datacenter) for p in inv.resource_pools] == [(CLUSTER, DATACENTER)]
    assert [(f.name, f.datacenter) for f in inv.folders] == [("", DATACENTER)]
    (ds,) = [d for d in inv.datastores if d.name == DATASTORE]
    assert ds.capacity > ds.free > 0 and ds.accessible and ds.datacenter == DATACENTER
    nets = {n.name: n.kind for n in inv.networks}
    assert nets[NETWORK] == "network" and nets[PORTGROUP] == "portgroup"
    vms = {v.name: v for v in inv.vms}
    assert set(EXISTING_VMS) <= set(vms)
    mine = vms["inv-vm"]
    assert mine.firmware == "efi" and mine.host == HOSTS[1] and mine.power == "poweredOff"
    assert mine.cpus == settings.vm.cpus and mine.memory_mb == settings.vm.memory_gb * 1024
    assert vms[EXISTING_VMS[0]].firmware == "bios" and vms[EXISTING_VMS[0]].power == "poweredOn"
