"""Configuring installed nodes through the Local UI (``appliance.configure: localui``) against the lab, every request
and response checked against the published spec.

The lab runs on a ManualClock moved in lockstep with the job's requests (see test_link_upload_cluster.ClockDriver),
so the reboot that applies the user data is always observed, whatever the machine's speed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_link_upload_cluster import ClockDriver, run
from tests.integration.test_localui_client import Harness, make_harness
from tests.support.projects import base_doc
from wizard.appliance import localui_spec
from wizard.appliance.configure import (
    P_CONFIGURATIONS,
    P_CONFIGURATIONS_STATUS,
    P_USERDATA,
    ConfigureNodeJob,
    NodeConfiguration,
)
from wizard.core.cancel import CancelToken
from wizard.core.errors import ProjectInvalid, WizardError
from wizard.core.http import DEFAULT_RETRY
from wizard.core.jobs import StepContext
from wizard.core.journal import Journal
from wizard.core.paths import app_paths
from wizard.core.project import ConfigureMode, parse_project, project_to_dict, read_ca_certs
from wizard.core.secrets import SecretStore
from wizard.install.steps.configure import ConfigureStep
from wizard.lab import Lab, ManualClock
from wizard.lab.machine import Timings

pytestmark = pytest.mark.lab

POLL = 0.002
STEP = 5.0  # lab seconds per lockstep step: the reboot window (about 200 s at speed 1) spans dozens of requests


@pytest.fixture
def lab(tmp_path: Path, clock: ManualClock) -> Iterator[Lab]:
    with Lab(2, tmp_path / "lab", clock, socket_timeout=10.0, tick_interval=None, timings=Timings()) as started:
        assert all(node.state.reboot == node.machine.reboot for node in started.nodes)  # the lab wires it
        yield started


@pytest.fixture
def harness(lab: Lab, clock: ManualClock, tmp_path: Path) -> Harness:
    return make_harness(lab, clock, tmp_path / "config")


def ca_pem(lab: Lab) -> str:
    return lab.nodes[1].cert_path.read_text(encoding="utf-8")


def static_config(lab: Lab, hostname: str = "palette-a") -> NodeConfiguration:
    return NodeConfiguration(
        hostname=hostname,
        address="127.0.0.1",  # where the lab node answers: the lab cannot move a node
        prefix=8,
        gateway="127.0.0.254",
        dns=("10.0.0.53", "10.0.0.54"),
        http_proxy="http://proxy.lab.internal:3128",
        https_proxy="http://proxy.lab.internal:3128",
        no_proxy=("localhost", "10.0.0.0/8"),
        ca_certs=(ca_pem(lab),),
    )


def job(h: Harness, config: NodeConfiguration, index: int = 0, timeout: float = 3600.0) -> ConfigureNodeJob:
    return ConfigureNodeJob(h.endpoint(index), config, h.connector, poll_interval=POLL, timeout=timeout, clock=h.clock)


def test_configured_through_the_local_ui_end_to_end(lab: Lab, harness: Harness, clock: ManualClock) -> None:
    node = lab.nodes[0]
    boot_before = node.machine.boot_id
    config = static_config(lab)
    waits: list[float] = []

    class Recording(CancelToken):
        def sleep(self, seconds: float) -> None:
            waits.append(seconds)
            super().sleep(seconds)

    # A request the rebooting node refuses is retried by the one policy: here with waits no longer than a poll, so
    # any longer wait below is the job's own backoff.
    harness.connector.retry = DEFAULT_RETRY.scaled(POLL / DEFAULT_RETRY.cap)
    with ClockDriver(lab, clock, harness.seen, STEP, lockstep=True):
        facts, task = run(job(harness, config), cancel=Recording())
    # Through the reboot too, every wait is one poll interval: the node coming back is seen within a poll.
    assert waits and max(waits) <= POLL
    assert facts["changed"] and facts["user_data_sent"] and facts["configurations_sent"]
    assert facts["rebooted"] and facts["nic"] == "eth0"
    assert "configured as palette-a" in task.message
    # The node rebooted (a new boot id) and came back with everything the job sent.
    assert node.machine.boot_id not in (None, boot_before)
    assert node.state.reboots == 1
    # The lab's timeline: the configuration until it was applied, and the reboot until the Local UI was back.
    reboot = node.state.timeline.intervals(["reboot"]) if node.state.timeline else []
    configure = node.state.timeline.intervals(["configure"]) if node.state.timeline else []
    assert [i.node for i in reboot] == ["edge-node-1"] and configure and configure[-1].end == reboot[0].end
    info = node.state.host_info()
    assert info["status"]["hostName"] == "palette-a"
    nic = info["spec"]["networkInfo"][0]
    assert nic["subnet"] == "255.0.0.0" and nic["gateway"] == "127.0.0.254" and nic["dns"] == ["10.0.0.53", "10.0.0.54"]
    assert node.state.get_configurations() == {
        "httpProxy": "http://proxy.lab.internal:3128",
        "httpsProxy": "http://proxy.lab.internal:3128",
        "noProxy": "localhost,10.0.0.0/8",
        "caCerts": [ca_pem(lab)],
    }
    iface = node.state.get_user_data()["network"]["interfaces"]["eth0"]
    assert iface == {
        "type": "static",
        "ipAddress": "127.0.0.1/8",
        "gateway": "127.0.0.254",
        "nameserver": ["10.0.0.53", "10.0.0.54"],
    }
    assert node.state.configuration_state() == {"state": "Configured"}
    # Each document was sent once; the outage was seen (requests with no answer) and ridden out.
    assert len(harness.calls("PUT", P_USERDATA)) == 1 and len(harness.calls("PUT", P_CONFIGURATIONS)) == 1
    polls = harness.calls("GET", P_CONFIGURATIONS_STATUS)
    assert any(e.status == 0 for e in polls) and polls[-1].status == 200
    # The other node was not touched.
    assert lab.nodes[1].state.hostname == "edge-node-2" and lab.nodes[1].state.reboots == 0


def test_rerun_skips_a_configured_node(lab: Lab, harness: Harness, clock: ManualClock) -> None:
    config = static_config(lab)
    with ClockDriver(lab, clock, harness.seen, STEP, lockstep=True):
        run(job(harness, config))
        mark = len(harness.seen)
        facts, task = run(job(harness, config))
    assert facts == {"changed": False, "hostname": "palette-a", "nic": "eth0"}
    assert "already configured" in task.message
    later = harness.seen[mark:]
    assert not [e for e in later if e.method in ("PUT", "POST") and e.path in (P_USERDATA, P_CONFIGURATIONS)]
    assert {e.path for e in later} >= {P_USERDATA, P_CONFIGURATIONS}  # it read both documents first
    assert lab.nodes[0].state.reboots == 1


def test_proxy_change_alone_applies_without_reboot(lab: Lab, harness: Harness, clock: ManualClock) -> None:
    node = lab.nodes[1]
    plain = NodeConfiguration(hostname="edge-node-2", http_proxy="http://proxy.lab.internal:3128")
    # The user data already matches the node (its host name, DHCP) apart from the proxy it also carries.
    with ClockDriver(lab, clock, harness.seen, STEP, lockstep=True):
        facts, _ = run(job(harness, plain, index=1))
    assert facts["configurations_sent"] and facts["user_data_sent"]
    assert node.state.get_configurations()["httpProxy"] == "http://proxy.lab.internal:3128"
    mark = len(harness.seen)
    changed = NodeConfiguration(
        hostname="edge-node-2", http_proxy="http://proxy.lab.internal:3128", ca_certs=(ca_pem(lab),)
    )
    with ClockDriver(lab, clock, harness.seen, STEP, lockstep=True):
        facts, _ = run(job(harness, changed, index=1))
    # The CA certificate is in both documents, so both are sent; a user-data change always reboots the node.
    assert facts["configurations_sent"] and node.state.get_configurations()["caCerts"] == [ca_pem(lab)]
    assert len([e for e in harness.seen[mark:] if e.method == "PUT"]) == 2


def test_failed_status_is_a_specific_error(lab: Lab, harness: Harness, clock: ManualClock) -> None:
    node = lab.nodes[0]
    node.state.configure_error = "interface eth0: address 127.0.0.1/8 is already in use"
    config = NodeConfiguration(hostname="palette-a", address="127.0.0.1", prefix=8, gateway="127.0.0.254")
    with ClockDriver(lab, clock, harness.seen, STEP, lockstep=True), pytest.raises(WizardError) as caught:
        run(job(harness, config))
    err = caught.value
    assert err.title == "Node configuration failed"
    assert "interface eth0: address 127.0.0.1/8 is already in use" in err.message and "node-1" in err.message
    assert node.state.reboots == 0 and node.state.hostname == "edge-node-1"
    # A rerun sends the values again (the node holds them but failed to apply them) and succeeds.
    with ClockDriver(lab, clock, harness.seen, STEP, lockstep=True):
        facts, _ = run(job(harness, config))
    assert facts["changed"] and facts["user_data_sent"] and facts["rebooted"] and node.state.hostname == "palette-a"


def test_refused_user_data_is_a_clear_error(lab: Lab, harness: Harness, clock: ManualClock) -> None:
    bad = NodeConfiguration(hostname="palette-a", address="127.0.0.1", prefix=8, gateway="10.9.9.9")
    with pytest.raises(WizardError) as caught:
        run(job(harness, bad))
    assert caught.value.title == "Node refused its user data"
    assert "gateway 10.9.9.9 is not in 127.0.0.0/8" in caught.value.message
    assert lab.nodes[0].state.configuration_state() == {"state": "Not Configured"}


def test_node_that_never_comes_back_times_out(lab: Lab, harness: Harness, clock: ManualClock) -> None:
    node = lab.nodes[0]
    node.machine.never_boots = True  # the reboot powers it down for good
    with ClockDriver(lab, clock, harness.seen, STEP, lockstep=True), pytest.raises(WizardError) as caught:
        run(job(harness, static_config(lab), timeout=600.0))
    assert caught.value.title == "Node configuration too slow"
    assert "has not answered again" in caught.value.message


def test_node_without_a_machine_is_down_while_it_applies(tmp_path: Path, clock: ManualClock) -> None:
    """Without a machine to reboot (``reboot`` unset) the node itself is unreachable for ``reboot_seconds``."""
    with Lab(1, tmp_path / "lab", clock, socket_timeout=10.0, tick_interval=None) as lab:
        h = make_harness(lab, clock, tmp_path / "config")
        state = lab.nodes[0].state
        state.reboot = None  # a node state on its own, as some tests build it: it simulates the outage itself
        config = NodeConfiguration(hostname="palette-solo", dns=("10.0.0.53",))
        with ClockDriver(lab, clock, h.seen, STEP, lockstep=True):
            facts, _ = run(job(h, config))
        assert facts["rebooted"] and state.hostname == "palette-solo" and state.reboots == 1
        assert state.nameservers == ["10.0.0.53"]
        assert lab.nodes[0].machine.boot_id is not None


# -- The project and the step --------------------------------------------------------------------------------------


def _ctx(tmp_path: Path, doc: dict[str, Any]) -> StepContext:
    loaded = parse_project(doc, base=tmp_path)
    journal = Journal.open(tmp_path / "journal.json", loaded.project.name)
    return StepContext(loaded.project, SecretStore(), journal, app_paths().ensure())


def test_project_localui_mode_and_ca_certs(tmp_path: Path, lab: Lab) -> None:
    (tmp_path / "ca.pem").write_text(ca_pem(lab) + ca_pem(lab), encoding="utf-8")  # a file holding a chain
    network = {
        "vip": "127.0.10.50",
        "dns": ["10.0.0.53"],
        "proxy": {"http": "http://proxy.lab.internal:3128", "no_proxy": ["localhost"], "ca_certs": ["ca.pem"]},
    }
    doc = base_doc(appliance={"configure": "localui"}, network=network)
    loaded = parse_project(doc, base=tmp_path)
    project = loaded.project
    assert project.appliance.configure is ConfigureMode.LOCALUI
    assert project.network.proxy.ca_certs == (tmp_path / "ca.pem",)
    assert len(read_ca_certs(project.network.proxy)) == 2
    # Static nodes are reached at their address before it is made static: the operator is told so.
    assert {w.path for w in loaded.warnings} >= {"nodes[0].ip", "nodes[1].ip", "nodes[2].ip"}
    again = parse_project(project_to_dict(project, tmp_path), base=tmp_path).project
    assert again.appliance.configure is ConfigureMode.LOCALUI and again.network.proxy == project.network.proxy

    ctx = _ctx(tmp_path, doc)
    jobs = ConfigureStep().jobs(ctx)
    assert [j.id for j in jobs] == ["configure/node-1", "configure/node-2", "configure/node-3"]
    first = jobs[0]
    assert isinstance(first, ConfigureNodeJob)
    assert first.config.hostname == "edge-node-1" and first.config.address == "127.0.10.11"
    assert first.config.prefix == 24 and first.config.gateway == "127.0.10.1" and len(first.config.ca_certs) == 2
    body = first.config.user_data("eth0", {"tags": {"site": {}}, "registryCredentials": {"password": "********"}})
    localui_spec.validate_request_body("PUT", P_USERDATA, body)
    assert body["network"]["interfaces"]["eth0"]["ipAddress"] == "127.0.10.11/24"
    assert body["tags"] == {"site": {}} and "registryCredentials" not in body  # a masked password is never sent back


def test_project_rejects_bad_ca_certs_and_warns_outside_localui(tmp_path: Path) -> None:
    (tmp_path / "not-a-cert.pem").write_text("hello", encoding="utf-8")
    proxy = {"http": "http://proxy:3128", "ca_certs": ["not-a-cert.pem", "missing.pem"]}
    with pytest.raises(ProjectInvalid) as caught:
        parse_project(base_doc(network={"vip": "127.0.10.50", "proxy": proxy}), base=tmp_path)
    paths = {p.path for p in caught.value.problems if p.is_error}
    assert paths == {"network.proxy.ca_certs[0]", "network.proxy.ca_certs[1]"}
    (tmp_path / "ok.pem").write_text("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n")
    proxy["ca_certs"] = ["ok.pem"]
    loaded = parse_project(base_doc(network={"vip": "127.0.10.50", "proxy": proxy}), base=tmp_path)
    assert "network.proxy.ca_certs" in {w.path for w in loaded.warnings}
    assert ConfigureStep().jobs(_ctx(tmp_path, base_doc())) == []  # the seed configures the nodes
