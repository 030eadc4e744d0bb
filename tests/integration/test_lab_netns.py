"""The lab on network namespaces: every node at its own address behind a host bridge, as on a real network.

Needs root on Linux with iproute2 (CI runs as root on Debian). Without them these tests fail and say why, unless
``PALETTE_WIZARD_NO_NETNS=1`` declares that this machine cannot run them (a developer's unprivileged laptop).
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import paramiko
import pytest

from tests.core.helpers import cli_env, json_events, run_cli
from tests.integration.conftest import CONTENT_SYNC_DELAY
from tests.integration.localui_client import SpecCheckedClient
from tests.integration.test_lab_cluster import cluster_body, prepare
from wizard.core.checks.address import check_address_free
from wizard.core.checks.catalog import Outcome
from wizard.core.errors import WizardError
from wizard.lab import Lab, ManualClock
from wizard.lab import netns as lab_netns
from wizard.lab.certs import create_node_certificate
from wizard.lab.console import SystemConsoleServer, SystemConsoleState
from wizard.lab.sshd import ssh_fingerprint

pytestmark = pytest.mark.lab

# One subnet per lab that may run at the same time as another in this module (the rehearsal takes the default one).
SUBNET = "10.213.4.0/24"
CLUSTER_SUBNET = "10.213.1.0/24"
OFF_SUBNET = "10.213.2.0/24"
CRASH_SUBNET = "10.213.3.0/24"
TIMELINE = 100.0
HOST = "/v1/edge-mgmt/edgehosts/current"


def require_netns() -> None:
    reason = lab_netns.unavailable_reason()
    if reason is None:
        return
    if os.environ.get("PALETTE_WIZARD_NO_NETNS") == "1":
        pytest.skip(f"PALETTE_WIZARD_NO_NETNS=1: {reason}")
    pytest.fail(f"the namespace lab cannot run here: {reason} (set PALETTE_WIZARD_NO_NETNS=1 only where it never can)")


@pytest.fixture(scope="module")
def netns_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Three installed nodes, each in its own namespace, on the real clock with a fast ticker."""
    require_netns()
    with Lab(3, tmp_path_factory.mktemp("netns-lab"), netns=True, subnet=SUBNET, tick_interval=0.05) as lab:
        yield lab


def tag_resources(tag: str) -> tuple[list[str], list[str]]:
    namespaces, links = lab_netns.lab_resources()
    mark = lab_netns.PREFIX + tag
    return [n for n in namespaces if n.startswith(mark)], [name for name in links if name.startswith(mark)]


def ssh_banner(host: str, port: int) -> bytes:
    with socket.create_connection((host, port), timeout=5) as s:
        s.settimeout(5)
        return s.recv(64)


def ns_listeners(namespace: str) -> set[str]:
    out = subprocess.run(
        ["ip", "netns", "exec", namespace, "ss", "-Hltn"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return {line.split()[3] for line in out.splitlines() if line.strip()}


def ns_addresses(namespace: str) -> list[str]:
    out = subprocess.run(
        ["ip", "-n", namespace, "-j", "-4", "addr", "show", "dev", "eth0"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return [info["local"] for entry in json.loads(out) for info in entry["addr_info"]]


def test_nodes_answer_at_their_own_addresses(netns_lab: Lab) -> None:
    network = netns_lab.network
    assert network is not None
    addresses = [node.state.ip for node in netns_lab.nodes]
    assert addresses == ["10.213.4.11", "10.213.4.12", "10.213.4.13"]
    for node in netns_lab.nodes:
        assert node.ssh.port == 22 and node.server.port == 5080
        assert ssh_banner(node.state.ip, 22).startswith(b"SSH-2.0-")
        with httpx.Client(verify=node.client_ssl_context(), timeout=10) as http:
            r = http.get(f"https://{node.state.ip}:5080/v1/ping")
        assert r.status_code == 200
        assert node.url == f"https://{node.state.ip}:5080"
        # The listening sockets live in the node's namespace, bound to its address only.
        assert {f"{node.state.ip}:22", f"{node.state.ip}:5080"} <= ns_listeners(node.namespace or "")


def test_nodes_are_not_on_loopback(netns_lab: Lab) -> None:
    node = netns_lab.nodes[0]
    # Whatever this machine itself runs on 127.0.0.1 (an sshd, say), it is not the node: refused, or another identity.
    try:
        with (
            socket.create_connection(("127.0.0.1", 5080), timeout=3) as raw,
            node.client_ssl_context().wrap_socket(raw, server_hostname=node.state.ip),
        ):
            pytest.fail("127.0.0.1:5080 completed a TLS handshake with the node's certificate")
    except (ConnectionRefusedError, ssl.SSLError):
        pass
    try:
        sock = socket.create_connection(("127.0.0.1", 22), timeout=3)
    except ConnectionRefusedError:
        return  # nothing listens there
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=5)
        assert ssh_fingerprint(transport.get_remote_server_key()) != node.ssh.fingerprint
    except paramiko.SSHException:
        pass
    finally:
        transport.close()


def test_node_ip_fact_is_its_namespace_address(netns_lab: Lab) -> None:
    for node in netns_lab.nodes:
        assert node.namespace is not None
        assert ns_addresses(node.namespace) == [node.state.ip]
        client = SpecCheckedClient(node)
        try:
            client.login()
            info = client.get(HOST, expect=200).json()
        finally:
            client.close()
        assert info["spec"]["networkInfo"][0]["ip"] == node.state.ip
        assert info["spec"]["networkInfo"][0]["subnet"] == "255.255.255.0"
        ssh = paramiko.SSHClient()
        ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
        ssh.get_host_keys().add(node.state.ip, node.ssh.host_key.get_name(), node.ssh.host_key)
        try:
            ssh.connect(node.state.ip, 22, "kairos", "kairos", look_for_keys=False, allow_agent=False, timeout=10)
            transport = ssh.get_transport()
            assert transport is not None and transport.sock.getpeername()[0] == node.state.ip  # type: ignore[union-attr]
            _, out, _ = ssh.exec_command("hostname", timeout=10)
            assert out.read().decode().strip() == node.state.hostname
        finally:
            ssh.close()


def test_address_check_sees_lab_nodes(netns_lab: Lab) -> None:
    network = netns_lab.network
    assert network is not None
    node = netns_lab.nodes[1]
    taken = check_address_free("net.node-ip-free", node.state.ip, node.name, timeout=1.0)
    assert taken.outcome is Outcome.FAIL, taken
    assert any("22" in e or "5080" in e or "ping" in e for e in taken.details["evidence"])
    free_address = network.host_address(50)
    free = check_address_free("net.node-ip-free", free_address, "spare", timeout=1.0)
    assert free.outcome is Outcome.PASS, free


def test_powered_off_node_is_silent(tmp_path: Path) -> None:
    """A node whose OS does not run holds its address but its NIC is down: nothing answers, so a preflight sees the
    address free, as before a real install; the SSH and Local UI ports are not refused but unreachable."""
    require_netns()
    with Lab(1, tmp_path / "lab", netns=True, subnet=OFF_SUBNET, installed=False, tick_interval=None) as lab:
        node = lab.nodes[0]
        assert node.machine.boot_id is None
        result = check_address_free("net.node-ip-free", node.state.ip, node.name, ports=(22, 5080), timeout=0.5)
        assert result.outcome is Outcome.PASS, result
        with pytest.raises(OSError) as caught:
            socket.create_connection((node.state.ip, 22), timeout=0.5).close()
        assert not isinstance(caught.value, ConnectionRefusedError)


def test_vip_answers_once_the_cluster_runs(tmp_path: Path) -> None:
    require_netns()
    clock = ManualClock()
    with Lab(
        3,
        tmp_path / "lab",
        clock,
        netns=True,
        subnet=CLUSTER_SUBNET,
        content_sync_delay=CONTENT_SYNC_DELAY,
        cluster_timeline=TIMELINE,
        tick_interval=None,
    ) as lab:
        network = lab.network
        assert network is not None
        vip = network.host_address(10)
        certificate = create_node_certificate(tmp_path / "console", ip=vip, hostname="palette")
        console = SystemConsoleServer(SystemConsoleState(clock), certificate, host=vip, port=443, socket_timeout=10)
        lab.serve_at_vip(console)
        assert not console.running
        clients = [SpecCheckedClient(node) for node in lab.nodes]
        try:

            def client(i: int) -> SpecCheckedClient:
                return clients[i]

            prepared = prepare(client, clock)
            prepared[0].post("/v1/edge-mgmt/cluster", json=cluster_body(lab, vip=vip), expect=202)
            clock.advance(0.9 * TIMELINE)
            lab.tick()
            # Provisioning: nobody holds the VIP yet, so connecting to it gets no answer at all.
            assert not console.running and network.holder(vip) is None
            with pytest.raises(OSError) as caught:
                socket.create_connection((vip, 443), timeout=0.5).close()
            assert not isinstance(caught.value, ConnectionRefusedError)

            clock.advance(0.2 * TIMELINE)
            lab.tick()
            assert prepared[0].get("/v1/edge-mgmt/cluster/details", expect=200).json()["status"]["clusterState"] == (
                "Running"
            )
            leader = lab.nodes[0]
            assert network.holder(vip) == leader.index and console.running
            assert leader.namespace is not None and vip in ns_addresses(leader.namespace)
            assert f"{vip}:443" in ns_listeners(leader.namespace)
            ctx = ssl.create_default_context(cafile=str(certificate.cert_path))
            with httpx.Client(verify=ctx, timeout=10) as http:
                r = http.post(f"https://{vip}/v1/auth/syslogin", json={"username": "admin", "password": "admin"})
            assert r.status_code == 200 and r.json()["IsPasswordReset"] is True
        finally:
            for c in clients:
                c.close()
        tag = network.tag
    assert not console.running
    assert tag_resources(tag) == ([], [])


def test_stop_removes_everything(tmp_path: Path) -> None:
    require_netns()
    lab = Lab(2, tmp_path / "lab", netns=True, subnet=OFF_SUBNET, tick_interval=0.05)
    network = lab.network
    assert network is not None
    assert tag_resources(network.tag) == ([], [])  # nothing exists before start
    with lab:
        namespaces, links = tag_resources(network.tag)
        assert len(namespaces) == 2 and network.bridge in links and len(links) == 3
    assert tag_resources(network.tag) == ([], [])
    lab.stop()  # a second stop is harmless


def test_stale_resources_of_a_crashed_lab_are_swept(netns_lab: Lab) -> None:
    """A process that built a lab network and died without cleaning up: the next setup removes its leftovers,
    and never a running lab's."""
    script = textwrap.dedent(
        f"""
        import os
        from wizard.lab.netns import LabNetwork
        net = LabNetwork(2, subnet={CRASH_SUBNET!r}).up()
        print(net.tag, flush=True)
        os._exit(0)  # no cleanup: as if killed
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    crashed = proc.stdout.strip()
    namespaces, links = tag_resources(crashed)
    assert len(namespaces) == 2 and len(links) == 3  # left behind
    removed = lab_netns.sweep_stale()
    # The namespaces and the bridge go by name; a veth may instead vanish with its namespace.
    assert set([*namespaces, f"{lab_netns.PREFIX}{crashed}br"]) <= set(removed)
    assert tag_resources(crashed) == ([], [])
    live = netns_lab.network
    assert live is not None
    assert len(tag_resources(live.tag)[0]) == 3  # the running lab is untouched
    assert ssh_banner(netns_lab.nodes[0].state.ip, 22).startswith(b"SSH-2.0-")


@pytest.mark.timeout(150)
def test_rehearsal_on_namespaces(tmp_path: Path) -> None:
    """``palette-wizard run --rehearse --netns``: the whole install reaches the nodes and the VIP over the bridge."""
    require_netns()
    before = lab_netns.lab_resources()
    out = run_cli(
        ["run", "--rehearse", "--netns", "--json", "--speed", "600", "--keep"], cli_env(tmp_path / "home"), timeout=120
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    events = json_events(out.stdout)
    assert all(e["ok"] for e in events if e["event"] == "step_finished")
    project = (tmp_path / "home" / "state" / "rehearsal" / "project.yaml").read_text()
    assert "ip: 10.213.0.11" in project and "vip: 10.213.0.10" in project and "gateway: 10.213.0.1\n" in project
    done = {e["job"]: e for e in events if e["event"] == "job_finished"}
    kubeconfig = Path(done["cluster/create"]["result"]["kubeconfig"]).read_text()
    assert "server: https://10.213.0.10:6443" in kubeconfig
    assert lab_netns.lab_resources() == before  # the lab's network went with it


def test_clear_error_without_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(WizardError) as caught:
        Lab(1, tmp_path / "lab", netns=True)
    assert caught.value.title == "Lab network namespaces not available" and "root" in caught.value.message


def test_clear_error_without_ip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if sys.platform != "linux":
        pytest.skip("network namespaces exist on Linux only")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(lab_netns.shutil, "which", lambda name: None)
    with pytest.raises(WizardError) as caught:
        Lab(1, tmp_path / "lab", netns=True)
    assert "iproute2" in caught.value.message
