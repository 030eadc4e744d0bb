"""The lab node's SSH server: real SSH (paramiko and OpenSSH clients), answering from the install lifecycle."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from wizard.lab.clock import ManualClock
from wizard.lab.machine import Machine, Stage, Timings
from wizard.lab.node import NodeState
from wizard.lab.sshd import LabSSHServer, NodeShell, load_or_create_host_key, ssh_fingerprint

pytestmark = pytest.mark.lab

T = Timings(firmware=10, installer_boot=20, install=100, reboot=10, os_boot=20, services=30)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def node(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[Machine, LabSSHServer, NodeState]]:
    machine = Machine("node-1", clock=clock, timings=T)
    accounts = NodeState(name="node-1", data_dir=tmp_path / "data", clock=clock)
    shell = NodeShell(machine, lambda: "edge-node-1", {"/opt/spectrocloud/.upload-auth-token": lambda: "tok-123\n"})
    server = LabSSHServer(machine, load_or_create_host_key(tmp_path / "host_key"), accounts, shell)
    with server:
        yield machine, server, accounts


def wait_port(port: int, *, up: bool, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.02)
    raise AssertionError(f"port {port} did not become {'reachable' if up else 'unreachable'}")


def connect(server: LabSSHServer, *, password: str = "kairos", user: str = "kairos") -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.get_host_keys().add(f"[127.0.0.1]:{server.port}", server.host_key.get_name(), server.host_key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("127.0.0.1", server.port, username=user, password=password, timeout=5, banner_timeout=5,
                   auth_timeout=5, look_for_keys=False, allow_agent=False)  # fmt: skip
    return client


def run(client: paramiko.SSHClient, command: str) -> tuple[int, str]:
    _, out, _ = client.exec_command(command, timeout=5)
    text = out.read().decode()
    return out.channel.recv_exit_status(), text


def test_install_lifecycle_seen_over_ssh(node: tuple[Machine, LabSSHServer, NodeState], clock: ManualClock) -> None:
    machine, server, _ = node
    assert machine.stage is Stage.POWERED_OFF
    wait_port(server.port, up=False)
    machine.insert_media("http://127.0.0.1/appliance.iso")
    machine.power_on()
    clock.advance(T.firmware + T.installer_boot)
    wait_port(server.port, up=True)
    client = connect(server)
    assert run(client, "kairos-agent state get boot") == (0, "livecd_boot\n")
    assert run(client, "ls /run/cos") == (0, "live_mode\n")
    live_boot = run(client, "cat /proc/sys/kernel/random/boot_id")[1].strip()
    clock.advance(T.install * 0.55)
    code, journal = run(client, "sudo journalctl -b -n 50 --no-pager")
    assert code == 0 and "Copying image to COS_STATE (50%)" in journal and "70%" not in journal
    assert run(client, "test -e /run/cos/active_mode")[0] == 1
    # The install finishes; the live system stays up until the installer reboots it (``finish`` later), then the
    # session drops and the port closes.
    clock.advance(T.install * 0.5)
    assert machine.stage is Stage.INSTALL_DONE
    clock.advance(T.finish)
    assert machine.stage is Stage.REBOOTING
    wait_port(server.port, up=False)
    with pytest.raises((EOFError, OSError, paramiko.SSHException)):
        run(client, "true")
    client.close()
    clock.advance(T.reboot + T.firmware + T.os_boot)
    wait_port(server.port, up=True)
    client = connect(server)
    assert run(client, "kairos-agent state get boot") == (0, "active_boot\n")
    assert run(client, "test -e /run/cos/active_mode")[0] == 0
    assert run(client, "cat /proc/sys/kernel/random/boot_id")[1].strip() not in ("", live_boot)
    assert "Copying image" not in run(client, "journalctl -n 100")[1], "the installed OS has its own journal"
    assert not machine.local_ui_up
    clock.advance(T.services)
    assert machine.local_ui_up
    assert "local UI ready" in run(client, "tail -n 1 /var/log/stylus-agent.log")[1]
    assert run(client, "cat /opt/spectrocloud/.upload-auth-token") == (0, "tok-123\n")
    assert run(client, "nproc") == (0, "8\n")
    assert run(client, "hostname") == (0, "edge-node-1\n")
    assert run(client, "rm -rf /")[0] == 127
    assert run(client, "cat /etc/shadow")[0] == 1
    client.close()


def test_failed_install_is_visible_in_the_journal(tmp_path: Path, clock: ManualClock) -> None:
    machine = Machine("node-2", clock=clock, timings=T, fail_install=True)
    shell = NodeShell(machine, lambda: "edge-node-2", {})
    with LabSSHServer(
        machine,
        load_or_create_host_key(tmp_path / "k"),
        NodeState(name="node-2", data_dir=tmp_path / "d2", clock=clock),
        shell,
    ) as server:
        machine.insert_media("iso")
        machine.power_on()
        clock.advance(T.firmware + T.installer_boot + T.install * 2)
        assert machine.stage is Stage.INSTALL_FAILED
        wait_port(server.port, up=True)
        client = connect(server)
        assert "ERROR failed installing" in run(client, "journalctl -n 5")[1]
        client.close()


def test_authentication_and_host_key(node: tuple[Machine, LabSSHServer, NodeState], tmp_path: Path,
                                     clock: ManualClock) -> None:  # fmt: skip
    machine, server, accounts = node
    machine.insert_media("iso")
    machine.power_on()
    clock.advance(T.firmware + T.installer_boot)
    wait_port(server.port, up=True)
    with pytest.raises(paramiko.AuthenticationException):
        connect(server, password="wrong")
    accounts.set_password("kairos", "N3w-Passw0rd!")
    with pytest.raises(paramiko.AuthenticationException):
        connect(server, password="kairos")
    connect(server, password="N3w-Passw0rd!").close()
    # The host key is the node's own and survives a restart of the lab.
    again = load_or_create_host_key(tmp_path / "host_key")
    assert ssh_fingerprint(again) == server.fingerprint


@pytest.mark.skipif(shutil.which("ssh") is None, reason="OpenSSH client not installed")
def test_openssh_client_with_key_auth(node: tuple[Machine, LabSSHServer, NodeState], tmp_path: Path,
                                      clock: ManualClock) -> None:  # fmt: skip
    machine, server, accounts = node
    machine.insert_media("iso")
    machine.power_on()
    clock.advance(T.firmware + T.installer_boot)
    wait_port(server.port, up=True)
    key_path = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_path)], check=True)
    accounts.add_ssh_key("kairos", (tmp_path / "id_ed25519.pub").read_text())
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{server.port} {server.host_key.get_name()} {server.host_key.get_base64()}\n")
    out = subprocess.run(
        ["ssh", "-p", str(server.port), "-i", str(key_path), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
         "-o", f"UserKnownHostsFile={known}", "-o", "ConnectTimeout=5", "kairos@127.0.0.1",
         "kairos-agent state get boot"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == "livecd_boot\n"


def test_a_command_whose_session_is_cut_is_a_drop_never_a_result(
    node: tuple[Machine, LabSSHServer, NodeState], clock: ManualClock, tmp_path: Path
) -> None:
    """paramiko marks a channel closed without an exit status as exited with -1; the client must report a drop (and
    reconnect on the next command), never hand back a -1 "result" with whatever output had arrived."""
    from wizard.appliance.ssh import SSHClient, SSHCredentials, SSHDisconnected
    from wizard.core.trust import TrustStore

    machine, server, _ = node
    machine.insert_media("http://127.0.0.1/appliance.iso")
    machine.power_on()
    clock.advance(T.firmware + T.installer_boot)
    wait_port(server.port, up=True)
    client = SSHClient(
        "127.0.0.1",
        server.port,
        SSHCredentials("kairos", password="kairos"),
        trust=TrustStore(tmp_path / "config"),
        expected_fingerprint=server.live_fingerprint,
        connect_timeout=5,
        command_timeout=5,
    )
    try:
        for _ in range(20):  # the close can race the client's read: every round must still be a drop
            server.drop_next_commands = 1
            with pytest.raises(SSHDisconnected):
                client.run("nproc")
            assert client.run("nproc").ok
    finally:
        client.close()
