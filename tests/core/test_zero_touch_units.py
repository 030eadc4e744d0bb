"""Zero-touch pieces without peers: the seed a project gives each node, the second medium a BMC offers for it, and
the guided console step's text and completion rule."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from wizard.appliance.seed import USER_DATA, build_seed_iso, parse_seed, read_seed_iso, seed_for_node
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.progress import Progress
from wizard.core.project import AddressMode, Appliance, Files, Network, Node, Project, Provider, ProviderType, Proxy
from wizard.providers.manual import ConsoleConfigJob, ManualBootJob, ManualPacing, console_instruction
from wizard.providers.redfish.client import VirtualMedia
from wizard.providers.redfish.jobs import seed_medium

HASH = "$2b$04$" + "a" * 53


def _project(*nodes: Node) -> Project:
    return Project(
        name="zt",
        provider=Provider(ProviderType.MANUAL),
        nodes=nodes,
        network=Network(
            vip="10.0.0.50",
            dns=("10.0.0.2", "10.0.0.3"),
            search_domains=("lab.example",),
            ntp=("ntp.example",),
            proxy=Proxy(http="http://proxy:3128", no_proxy=("10.0.0.0/24",)),
        ),
        files=Files(),
        appliance=Appliance(install_disk="/dev/sda"),
    )


def test_static_node_seed_carries_project_settings(tmp_path: Path) -> None:
    node = Node("n1", "edge-a", AddressMode.STATIC, ip="10.0.0.11", prefix=24, gateway="10.0.0.1")
    seed = seed_for_node(_project(node), node, password_hash=HASH, ssh_keys=["ssh-ed25519 AAAA wizard"])
    volume, files = read_seed_iso(build_seed_iso(seed, tmp_path / "s.iso"))
    doc = yaml.safe_load(files[USER_DATA])
    site = doc["stylus"]["site"]
    assert volume == "cidata" and site["hostName"] == "edge-a"
    assert site["network"]["interfaces"]["eth0"] == {
        "type": "static",
        "ipAddress": "10.0.0.11",
        "mask": "255.255.255.0",
        "gateway": "10.0.0.1",
        "nameserver": "10.0.0.2",
    }
    assert site["ntpServers"] == ["ntp.example"] and site["network"]["httpProxy"] == "http://proxy:3128"
    assert site["network"]["noProxy"] == "10.0.0.0/24" and doc["install"]["device"] == "/dev/sda"
    assert site["users"][0]["passwd"] == HASH and site["users"][0]["ssh_authorized_keys"] == ["ssh-ed25519 AAAA wizard"]
    config = parse_seed((tmp_path / "s.iso").read_bytes())
    assert config.hostname == "edge-a" and config.users[0].password_hash == HASH


def test_dhcp_node_seed_asks_for_dhcp() -> None:
    node = Node("n2", "edge-b", AddressMode.DHCP, ip="10.0.0.12")
    seed = seed_for_node(_project(node), node, password_hash=HASH, ssh_keys=[])
    assert seed.address == "" and seed.prefix is None


class _Bmc:
    """Just what :func:`seed_medium` reads from a Redfish client."""

    def __init__(self, media: Mapping[str, tuple[str, ...]]) -> None:
        self.media = dict(media)

    def virtual_media_collections(self, system: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [("/redfish/v1/Managers/1/VirtualMedia", "Manager")]

    def get_optional(self, path: str) -> dict[str, Any]:
        return {"Members": [{"@odata.id": p} for p in self.media]}

    def refresh_media(self, media: VirtualMedia) -> VirtualMedia:
        return VirtualMedia(media.path, media.path.rsplit("/", 1)[-1], self.media[media.path], "", False, "x", "y", "M")


def _medium(bmc: _Bmc, path: str) -> VirtualMedia:
    return bmc.refresh_media(VirtualMedia(path, "", (), "", None, "", "", ""))


def test_seed_goes_to_a_second_cd_before_a_usb_stick() -> None:
    bmc = _Bmc({"/vm/Floppy": ("Floppy", "USBStick"), "/vm/CD1": ("CD", "DVD"), "/vm/CD2": ("CD",)})
    chosen = seed_medium(bmc, {}, _medium(bmc, "/vm/CD1"))  # type: ignore[arg-type]
    assert chosen is not None and chosen.path == "/vm/CD2"
    bmc = _Bmc({"/vm/CD1": ("CD", "DVD"), "/vm/Floppy": ("Floppy", "USBStick")})
    chosen = seed_medium(bmc, {}, _medium(bmc, "/vm/CD1"))  # type: ignore[arg-type]
    assert chosen is not None and chosen.path == "/vm/Floppy"


def test_single_drive_bmc_has_no_room_for_a_seed() -> None:
    bmc = _Bmc({"/vm/CD1": ("CD", "DVD"), "/vm/Floppy": ("Floppy",)})
    assert seed_medium(bmc, {}, _medium(bmc, "/vm/CD1")) is None  # type: ignore[arg-type]


def test_console_instruction_says_what_to_type() -> None:
    text = console_instruction(
        "edge-a",
        username="kairos",
        address="10.0.0.11",
        prefix=24,
        gateway="10.0.0.1",
        dns=("10.0.0.2",),
        search=("lab.example",),
    )
    for expected in (
        "F2",
        "Hostname: edge-a",
        "Static IP",
        "10.0.0.11",
        "255.255.255.0",
        "10.0.0.1",
        "10.0.0.2",
        "lab.example",
        "Quit",
    ):
        assert expected in text
    assert "DHCP" in console_instruction("edge-b", username="kairos")


def test_manual_boot_names_the_seed_to_attach() -> None:
    job = ManualBootJob("n1", "edge-a", "10.0.0.11", ports=(22,), iso_name="pma.iso", seed="/s/n1-seed.iso")
    assert "/s/n1-seed.iso" in job.text() and "second CD/DVD" in job.text()


def test_console_step_done_once_the_node_has_its_hostname() -> None:
    answers: Iterator[str] = iter(["localhost", "edge-a.lab.example"])

    def hostname_of() -> str:
        return next(answers)

    job = ConsoleConfigJob("n1", "edge-a", "type this", hostname_of, pacing=ManualPacing(interval=0.001))
    facts = job.run(Progress().root(), CancelToken())
    assert facts is not None and facts["hostname"] == "edge-a.lab.example"


def test_console_step_times_out_with_the_instructions() -> None:
    def unreachable() -> str:
        raise WizardError("SSH connection refused", "no")

    job = ConsoleConfigJob("n1", "edge-a", "type this", unreachable, pacing=ManualPacing(interval=0.001, timeout=0.01))
    with pytest.raises(WizardError, match="not configured") as info:
        job.run(Progress().root(), CancelToken())
    assert info.value.remediation is not None and "type this" in info.value.remediation
