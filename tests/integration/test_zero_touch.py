"""Zero-touch configuration against lab nodes over real SSH: a node booted with a seed ISO takes its host name,
password hash and the wizard's key; the install monitor ejects a node's media as soon as its installer finished;
host keys move from the live installer's to the installed system's only across a proven reboot."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import paramiko
import pytest

from tests.integration.test_monitor import FAST, Driver, T, reporter
from wizard.appliance.monitor import InstallMonitor, InstallStage
from wizard.appliance.seed import (
    build_seed_iso,
    hash_password,
    parse_seed,
    public_key_line,
    seed_for_node,
    wizard_key,
)
from wizard.appliance.ssh import SSHAuthFailed, SSHClient, SSHCredentials
from wizard.core.cancel import CancelToken
from wizard.core.progress import Progress, Reporter
from wizard.core.project import AddressMode, Appliance, Files, Network, Node, Project, Provider, ProviderType
from wizard.core.trust import TrustChanged, TrustKind, TrustRequest, TrustStore
from wizard.lab import Lab, ManualClock
from wizard.lab.machine import Stage
from wizard.lab.node import DEFAULT_PASSWORD

pytestmark = pytest.mark.lab

OPERATOR_PASSWORD = "operator-chosen-Passw0rd"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def lab(tmp_path: Path, clock: ManualClock) -> Iterator[Lab]:
    with Lab(1, tmp_path / "lab", clock, installed=False, timings=T, tick_interval=None) as started:
        yield started


def _project(node: Node) -> Project:
    return Project(
        name="zt",
        provider=Provider(ProviderType.MANUAL),
        nodes=(node,),
        network=Network(vip="10.0.0.50", dns=("10.0.0.2",), ntp=("ntp.example",)),
        files=Files(),
        appliance=Appliance(),
    )


def _seed_image(tmp_path: Path, key: paramiko.PKey, hostname: str = "edge-a") -> bytes:
    node = Node("n1", hostname, AddressMode.STATIC, ip="10.0.0.11", prefix=24, gateway="10.0.0.1")
    seed = seed_for_node(
        _project(node), node, password_hash=hash_password(OPERATOR_PASSWORD, rounds=4), ssh_keys=[public_key_line(key)]
    )
    return build_seed_iso(seed, tmp_path / "n1-seed.iso").read_bytes()


def _login(port: int, creds: SSHCredentials, store: TrustStore) -> str:
    with SSHClient("127.0.0.1", port, creds, trust=store, verify_host=lambda key, fp: None) as client:
        return client.run("hostname").stdout.strip()


def test_wizard_key_is_created_once_owner_only(tmp_path: Path) -> None:
    key = wizard_key(tmp_path / "config")
    path = tmp_path / "config" / "ssh" / "wizard_ed25519"
    assert path.stat().st_mode & 0o077 == 0
    assert wizard_key(tmp_path / "config").get_base64() == key.get_base64()
    assert public_key_line(key).startswith("ssh-ed25519 ")


def test_seed_read_back_sets_hostname_account_and_key(tmp_path: Path) -> None:
    key = wizard_key(tmp_path / "config")
    config = parse_seed(_seed_image(tmp_path, key))
    assert config.hostname == "edge-a" and config.post_install == "reboot"
    (user,) = config.users
    assert user.name == "kairos" and user.password_hash.startswith("$2b$")
    assert user.ssh_keys == (public_key_line(key),)
    with pytest.raises(ValueError, match="ISO"):
        parse_seed(b"not an iso" * 100)


def test_seeded_node_takes_the_key_and_refuses_the_default_password(
    lab: Lab, clock: ManualClock, tmp_path: Path
) -> None:
    node = lab.nodes[0]
    key = wizard_key(tmp_path / "config")
    store = TrustStore(tmp_path / "trust")
    node.machine.insert_media("https://127.0.0.1/appliance.iso")
    node.machine.insert_seed("https://127.0.0.1/n1-seed.iso", _seed_image(tmp_path, key))
    node.machine.power_on()
    clock.advance(2 * T.firmware + T.installer_boot + T.install + T.finish + T.reboot + T.os_boot + 1)
    assert node.machine.stage is Stage.RUNNING and node.machine.seeded_with is not None

    import time

    deadline = time.monotonic() + 10
    while not _port_open(node.ssh.port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _login(node.ssh.port, SSHCredentials("kairos", pkey=key), store) == "edge-a"
    assert _login(node.ssh.port, SSHCredentials("kairos", password=OPERATOR_PASSWORD), store) == "edge-a"
    with pytest.raises(SSHAuthFailed):
        _login(node.ssh.port, SSHCredentials("kairos", password=DEFAULT_PASSWORD), store)


def test_unseeded_node_keeps_the_default_and_refuses_the_wizard_key(
    lab: Lab, clock: ManualClock, tmp_path: Path
) -> None:
    node = lab.nodes[0]
    node.machine.insert_media("https://127.0.0.1/appliance.iso")
    node.machine.insert_seed("https://127.0.0.1/broken.iso", b"\0" * 4096)  # not a cidata ISO: ignored
    node.machine.power_on()
    clock.advance(T.firmware + T.installer_boot + 1)
    assert node.machine.seeded_with is None and "ISO" in node.machine.seed_error
    _wait_port(node.ssh.port)
    store = TrustStore(tmp_path / "trust")
    with pytest.raises(SSHAuthFailed):
        _login(node.ssh.port, SSHCredentials("kairos", pkey=wizard_key(tmp_path / "config")), store)
    assert _login(node.ssh.port, SSHCredentials("kairos", password=DEFAULT_PASSWORD), store) == node.name


def _port_open(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_port(port: int) -> None:
    import time

    deadline = time.monotonic() + 10
    while not _port_open(port):
        assert time.monotonic() < deadline, f"port {port} never opened"
        time.sleep(0.05)


def _monitor(lab: Lab, store: TrustStore, clock: ManualClock, key: paramiko.PKey, **kw: Any) -> InstallMonitor:
    node = lab.nodes[0]
    creds = SSHCredentials("kairos", password=DEFAULT_PASSWORD, pkey=key)
    kw.setdefault("probe_credentials", creds)
    return InstallMonitor(
        node.name,
        "127.0.0.1",
        node.ssh.port,
        creds,
        trust=store,
        local_ui_port=node.server.port,
        clock=clock,
        poll=FAST,
        **kw,
    )


def _seeded_power_on(lab: Lab, tmp_path: Path, key: paramiko.PKey) -> None:
    machine = lab.nodes[0].machine
    machine.insert_media("https://127.0.0.1/appliance.iso")
    machine.insert_seed("https://127.0.0.1/n1-seed.iso", _seed_image(tmp_path, key))
    machine.power_on()


@pytest.fixture
def slow_to_reboot(tmp_path: Path, clock: ManualClock) -> Iterator[Lab]:
    """The installer waits 4 lab minutes (8 s here) before it reboots: time enough for the monitor to see it finish
    and eject however loaded the machine is, so the test proves the order, not a race."""
    with Lab(1, tmp_path / "lab", clock, installed=False, timings=replace(T, finish=240.0), tick_interval=None) as lab:
        yield lab


def test_media_ejected_per_node_as_soon_as_its_installer_finished(
    slow_to_reboot: Lab, clock: ManualClock, tmp_path: Path
) -> None:
    lab = slow_to_reboot
    node = lab.nodes[0]
    node.machine.media_first = True  # CD first in the boot order: only an eject in time makes it boot the disk
    key = wizard_key(tmp_path / "config")
    seen: list[tuple[Stage, str | None]] = []

    def eject(report: Reporter, cancel: CancelToken) -> Mapping[str, Any]:
        seen.append((node.machine.stage, node.machine.boot_id))
        node.machine.eject_media()
        node.machine.eject_seed()
        return {"ejected": True}

    job = _monitor(
        lab, TrustStore(tmp_path / "trust"), clock, key, expected_fingerprint=node.ssh.fingerprint, on_installed=eject
    )
    _seeded_power_on(lab, tmp_path, key)
    with Driver(lab, clock):
        facts = job.run(reporter(Progress(), "install/n1"), CancelToken())
    assert facts is not None
    assert len(seen) == 1, "ejected exactly once"
    # Ejected while the installer's system still ran (its boot id), before the installed system came up from disk.
    stage, boot_id = seen[0]
    assert stage is Stage.INSTALL_DONE
    assert boot_id == facts["installer_boot_id"]
    assert facts["eject"]["ejected"] and facts["os_boot_id"] != facts["installer_boot_id"]
    assert node.machine.media is None and node.machine.installed
    assert node.machine.kairos_boot_state() == "active_boot"  # came up from disk
    stages = [s["stage"] for s in facts["stages"]]
    assert stages[-1] == InstallStage.DONE.value
    assert not [w for w in facts["warnings"] if "installer again" in w]


def test_without_the_eject_a_cd_first_node_boots_the_installer_again(lab: Lab, clock: ManualClock) -> None:
    machine = lab.nodes[0].machine
    machine.media_first = True
    machine.insert_media("https://127.0.0.1/appliance.iso")
    machine.power_on()
    clock.advance(T.firmware + T.installer_boot + T.install + 1)
    installer_boot = machine.boot_id
    assert machine.stage is Stage.INSTALL_DONE and machine.installed
    clock.advance(T.finish + T.reboot + T.firmware + T.installer_boot + 1)
    assert machine.boot_id != installer_boot
    assert machine.kairos_boot_state() == "livecd_boot"  # the installer again, not the installed system


def test_installed_system_key_pinned_after_a_proven_reboot(lab: Lab, clock: ManualClock, tmp_path: Path) -> None:
    node = lab.nodes[0]
    live = paramiko.ECDSAKey.generate(bits=256)
    node.ssh.live_host_key = live
    assert node.ssh.live_fingerprint != node.ssh.fingerprint
    key = wizard_key(tmp_path / "config")
    store = TrustStore(tmp_path / "trust")
    asked: list[TrustRequest] = []

    def confirm(request: TrustRequest) -> bool:
        asked.append(request)
        return True

    job = _monitor(lab, store, clock, key, confirm=confirm)  # nothing pinned in the project: the operator confirms
    _seeded_power_on(lab, tmp_path, key)
    with Driver(lab, clock):
        facts = job.run(reporter(Progress(), "install/n1"), CancelToken())
    assert facts is not None
    change = facts["host_key_change"]
    assert change["installer"] == node.ssh.live_fingerprint and change["installed"] == node.ssh.fingerprint
    assert change["proven_by"] == "boot-id" and change["os_boot_id"] != change["installer_boot_id"]
    assert facts["host_fingerprint"] == node.ssh.fingerprint
    # Both keys are recorded: the installer's under its own name, the installed system's as the node's key.
    assert store.pinned(TrustKind.SSH, "127.0.0.1", node.ssh.port)["fingerprint"] == node.ssh.fingerprint  # type: ignore[index]
    installer = store.pinned(TrustKind.SSH, "installer@127.0.0.1", node.ssh.port)
    assert installer is not None and installer["fingerprint"] == node.ssh.live_fingerprint
    assert [r.host for r in asked] == ["installer@127.0.0.1", "127.0.0.1"]


def test_project_pins_need_no_confirmation(lab: Lab, clock: ManualClock, tmp_path: Path) -> None:
    node = lab.nodes[0]
    node.ssh.live_host_key = paramiko.ECDSAKey.generate(bits=256)
    key = wizard_key(tmp_path / "config")
    job = _monitor(
        lab,
        TrustStore(tmp_path / "trust"),
        clock,
        key,
        confirm=None,
        expected_fingerprint=node.ssh.fingerprint,
        installer_fingerprint=node.ssh.live_fingerprint,
    )
    _seeded_power_on(lab, tmp_path, key)
    with Driver(lab, clock):
        facts = job.run(reporter(Progress(), "install/n1"), CancelToken())
    assert facts is not None and facts["host_key_change"]["proven_by"] == "boot-id"


def test_key_change_without_a_reboot_is_host_key_changed(lab: Lab, clock: ManualClock, tmp_path: Path) -> None:
    node = lab.nodes[0]
    node.ssh.live_host_key = paramiko.ECDSAKey.generate(bits=256)
    key = wizard_key(tmp_path / "config")
    job = _monitor(lab, TrustStore(tmp_path / "trust"), clock, key, confirm=lambda r: True)
    _seeded_power_on(lab, tmp_path, key)
    errors: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            job.run(reporter(Progress(), "install/n1"), CancelToken())
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    clock.advance(T.firmware + T.installer_boot + T.install * 0.2)  # installing, live key answers
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    import time

    deadline = time.monotonic() + 20
    while job.stage is not InstallStage.INSTALLING and not done.is_set():
        assert time.monotonic() < deadline, f"stuck at {job.stage}"
        time.sleep(0.02)
    # Mid-install, with the same boot, the node now presents another key (an impostor on its address).
    node.ssh.live_host_key = paramiko.ECDSAKey.generate(bits=256)
    node.ssh.drop_sessions()
    assert done.wait(30), "the monitor kept going with a changed key"
    assert errors and isinstance(errors[0], TrustChanged), errors
    assert errors[0].title == "Host key changed"


def test_installed_key_pinned_when_a_network_blip_hid_the_reboot(lab: Lab, clock: ManualClock, tmp_path: Path) -> None:
    """The monitor never sees the installer's last line nor SSH going down (the network between here and the node
    was out the whole time): the installed system's new key is still accepted, because a login proves a new boot id
    in the installed system. A real install can miss the reboot window like this; so can a loaded jump host."""
    node = lab.nodes[0]
    node.ssh.live_host_key = paramiko.ECDSAKey.generate(bits=256)
    key = wizard_key(tmp_path / "config")
    store = TrustStore(tmp_path / "trust")
    job = _monitor(lab, store, clock, key, confirm=lambda r: True)
    _seeded_power_on(lab, tmp_path, key)
    clock.advance(T.firmware + T.installer_boot + T.install * 0.2)  # installing, the live key answers
    lab.tick()
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["facts"] = job.run(reporter(Progress(), "install/n1"), CancelToken())
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    import time

    deadline = time.monotonic() + 20
    while job.stage is not InstallStage.INSTALLING and not done.is_set():
        assert time.monotonic() < deadline, f"stuck at {job.stage}"
        time.sleep(0.02)
    # The blip: the node stops answering from here, and its sessions drop, while it finishes, reboots and comes up.
    blip = threading.Event()
    blip.set()
    node.ssh.offline = blip.is_set
    node.ssh.drop_sessions()
    time.sleep(0.3)  # the monitor is now retrying against a silent node
    clock.advance(T.install + T.finish + T.reboot + T.firmware + T.os_boot + T.services + 1)
    lab.tick()
    assert node.machine.kairos_boot_state() == "active_boot"
    blip.clear()
    with Driver(lab, clock):
        assert done.wait(60), f"the monitor did not finish (stage {job.stage})"
    assert "error" not in outcome, outcome.get("error")
    facts = outcome["facts"]
    change = facts["host_key_change"]
    assert change["installer"] == node.ssh.live_fingerprint and change["installed"] == node.ssh.fingerprint
    assert change["proven_by"] == "boot-id" and change["install_end_seen"] is False
    assert facts["stages"][-1]["stage"] == InstallStage.DONE.value
