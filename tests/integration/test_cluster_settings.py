"""Cluster settings on the lab: NTP servers and SSH keys changed through ``cluster/settings`` where the appliance has
it, replica counts that fit the nodes, and two-node clusters only where ``isTwoNodeCluster`` exists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.localui_client import random_file
from tests.integration.releases import RELEASES
from tests.integration.test_link_upload_cluster import (
    SYNC_DELAY,
    TIMELINE,
    ClockDriver,
    cluster_job,
    prepare,
    run,
    upload_job,
)
from tests.integration.test_localui_client import Harness, make_harness
from wizard.appliance.cluster import P_CLUSTER_SETTINGS
from wizard.appliance.link import LinkJob
from wizard.appliance.localui import P_CLUSTER
from wizard.core.errors import WizardError
from wizard.lab import Lab, ManualClock
from wizard.lab.versions import ApplianceProfile

pytestmark = pytest.mark.lab

ONE_REPLICA = {"csiPlacementCount": "1", "mongoReplicas": "1"}


@pytest.fixture
def lab(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Iterator[Lab]:
    profile: ApplianceProfile = getattr(request, "param", RELEASES["4.9.46"])
    with Lab(
        3,
        tmp_path / "lab",
        clock,
        content_sync_delay=SYNC_DELAY,
        socket_timeout=10.0,
        cluster_timeline=TIMELINE,
        tick_interval=None,
        appliance=profile,
    ) as started:
        yield started


@pytest.fixture
def harness(lab: Lab, clock: ManualClock, tmp_path: Path) -> Harness:
    return make_harness(lab, clock, tmp_path / "config")


@pytest.mark.parametrize("lab", [RELEASES["4.9.46"], RELEASES["4.9.36"]], ids=["4.9.46", "4.9.36"], indirect=True)
def test_changed_ntp_and_ssh_keys_go_through_cluster_settings(
    harness: Harness, lab: Lab, clock: ManualClock, tmp_path: Path
) -> None:
    prepare(harness, lab, clock, tmp_path)
    kubeconfig = tmp_path / "kubeconfig"
    with ClockDriver(lab, clock, harness.seen, step=10.0, lockstep=True):
        facts, _ = run(cluster_job(harness, kubeconfig))
    assert facts["created"] is True and "settings" not in facts
    harness.seen.clear()
    # The project changes afterwards: a rerun meets the cluster and brings its settings in line where it can.
    facts, _ = run(cluster_job(harness, kubeconfig, ntp_servers=("ntp1.example.com", "ntp2.example.com")))
    assert facts["created"] is False and not harness.calls("POST", P_CLUSTER)
    config = lab.nodes[0].state.cluster.config["spec"]["cloudConfig"]["spec"]["clusterConfig"]  # type: ignore[union-attr]
    if lab.appliance.spec.has("PUT", P_CLUSTER_SETTINGS):
        assert facts["settings"] == "updated through cluster/settings"
        assert config["ntpServers"] == ["ntp1.example.com", "ntp2.example.com"]
    else:  # the first API has no cluster/settings: nothing is sent, the run says so
        assert facts["settings"].startswith("unchanged: this appliance has no cluster/settings")
        assert config["ntpServers"] == ["pool.ntp.org"]
    assert [e.status for e in harness.calls("PUT", P_CLUSTER_SETTINGS)] in ([202], [404])
    harness.seen.clear()
    run(cluster_job(harness, kubeconfig, ntp_servers=("ntp1.example.com", "ntp2.example.com")))
    if lab.appliance.spec.has("PUT", P_CLUSTER_SETTINGS):
        assert not harness.calls("PUT", P_CLUSTER_SETTINGS)  # in line now: nothing to send


def test_replica_counts_must_fit_a_smaller_cluster(
    harness: Harness, lab: Lab, clock: ManualClock, tmp_path: Path
) -> None:
    """Linked to one follower only: two nodes cannot hold the profile's default of 3 replicas."""
    link = LinkJob(harness.endpoint(0), [harness.endpoint(1)], harness.connector, poll_interval=0.005, clock=clock)
    run(link)
    with ClockDriver(lab, clock, harness.seen, step=5.0):
        bundle = tmp_path / "c.tar.zst"
        random_file(bundle, 64 * 1024)
        run(upload_job(harness, bundle))
    with pytest.raises(WizardError) as err:
        run(cluster_job(harness, tmp_path / "kc"))
    assert err.value.title == "Cluster variables do not fit the nodes"
    assert "CSI Placement Count is 3 but the cluster has 2 nodes: answer 1" in err.value.message
    with pytest.raises(WizardError, match=r"CSI Placement Count \(1\) must equal Mongo Replicas \(3\)"):
        run(cluster_job(harness, tmp_path / "kc", values={"csiPlacementCount": "1"}))
    assert not harness.calls("POST", P_CLUSTER)
    with ClockDriver(lab, clock, harness.seen, step=10.0, lockstep=True):
        facts, _ = run(cluster_job(harness, tmp_path / "kc", two_node=True, values=ONE_REPLICA))
    assert facts["created"] is True
    config = lab.nodes[0].state.cluster.config["spec"]["cloudConfig"]["spec"]["clusterConfig"]  # type: ignore[union-attr]
    assert config["isTwoNodeCluster"] is True
