"""A lab node from power-on to a running Local UI, seen through its real SSH and HTTPS endpoints."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import paramiko
import pytest

from wizard.lab import Lab, ManualClock
from wizard.lab.bootmenu import MENU_TIMEOUT as MENU
from wizard.lab.machine import Stage, Timings

pytestmark = pytest.mark.lab

T = Timings(firmware=5, installer_boot=10, install=60, reboot=5, os_boot=10, services=20)


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except ConnectionRefusedError:
        return True


def eventually(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def ssh_run(lab: Lab, index: int, command: str, password: str = "kairos") -> str:
    node = lab.nodes[index]
    client = paramiko.SSHClient()
    key = node.ssh.host_key
    client.get_host_keys().add(f"[127.0.0.1]:{node.ssh.port}", key.get_name(), key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("127.0.0.1", node.ssh.port, username="kairos", password=password, timeout=5,
                   look_for_keys=False, allow_agent=False)  # fmt: skip
    try:
        _, out, _ = client.exec_command(command, timeout=5)
        return str(out.read().decode())
    finally:
        client.close()


def test_lab_starts_and_stops_clean(tmp_path: Path) -> None:
    # How fast it starts is measured by tests/bench/bench_lab_start.py (goal: under 2 s), not asserted here.
    lab = Lab(3, tmp_path / "lab", ManualClock(), tick_interval=None).start()
    ports = [n.server.port for n in lab.nodes] + [n.ssh.port for n in lab.nodes]
    try:
        eventually(lambda: not any(refused(p) for p in ports))
    finally:
        lab.stop()
    eventually(lambda: all(refused(p) for p in ports))


def test_node_installs_from_power_on_to_local_ui(tmp_path: Path) -> None:
    clock = ManualClock()
    with Lab(1, tmp_path / "lab", clock, installed=False, timings=T, tick_interval=None, media="automatic") as lab:
        node = lab.nodes[0]
        assert node.machine.stage is Stage.POWERED_OFF
        assert refused(node.server.port) and refused(node.ssh.port)
        node.machine.insert_media("https://127.0.0.1/appliance.iso")
        node.machine.power_on()
        clock.advance(T.firmware + MENU + T.installer_boot)
        lab.tick()
        eventually(lambda: not refused(node.ssh.port))
        assert ssh_run(lab, 0, "kairos-agent state get boot") == "livecd_boot\n"
        assert refused(node.server.port), "the live installer has no Local UI"
        clock.advance(T.install + T.finish + T.reboot + T.firmware + T.os_boot)
        lab.tick()
        eventually(lambda: not refused(node.ssh.port))
        assert ssh_run(lab, 0, "kairos-agent state get boot") == "active_boot\n"
        assert refused(node.server.port), "stylus services are still starting"
        clock.advance(T.services)
        lab.tick()
        ctx = node.client_ssl_context()
        with httpx.Client(verify=ctx, timeout=5) as http:
            assert http.get(f"{node.url}/v1/ping").status_code == 200
            # One account serves both: a password changed through the Local UI is the SSH password too.
            login = http.post(f"{node.url}/v1/users/default/login", json={"username": "kairos", "password": "kairos"})
            token = login.json()["Token"]["Authorization"]
            reset = http.post(
                f"{node.url}/v1/users/default/password/reset",
                json={"oldPassword": "kairos", "newPassword": "Str0ng-Passw0rd"},
                headers={"Authorization": token},
            )
            assert reset.status_code == 204
        assert ssh_run(lab, 0, "hostname", password="Str0ng-Passw0rd") == f"{node.name}\n"
        with pytest.raises(paramiko.AuthenticationException):
            ssh_run(lab, 0, "hostname", password="kairos")
