"""The lab boots like the real media: a machine reads the GRUB menu of the ISO attached to it and follows it.

With the appliance ISO as shipped (default 2) a node sits at the interactive installer and ignores its seed; with
the unattended copy (default 0) it installs by itself and takes the seed; keys pressed during GRUB's countdown pick
another entry; the menu of a medium served over HTTP is read with range requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizard.appliance.grub import EntryKind
from wizard.appliance.seed import NodeSeed, build_seed_iso, hash_password
from wizard.appliance.unattended import derive_unattended
from wizard.core.integrity import hash_file
from wizard.lab.artifacts import appliance_iso
from wizard.lab.bootmenu import MENU_TIMEOUT, BootMenu, key_name, read_menu
from wizard.lab.clock import ManualClock
from wizard.lab.machine import Machine, Stage, Timings

pytestmark = [pytest.mark.lab, pytest.mark.media]

T = Timings(firmware=5, installer_boot=10, install=60, reboot=5, os_boot=10, services=20)


@pytest.fixture(scope="module")
def isos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("isos")
    original = appliance_iso(folder / "palette-edge-installer.iso", 256 * 1024)
    derived = derive_unattended(
        original, folder / "unattended.iso", expected_sha256=hash_file(original).sha256, cache=folder / "cache"
    )
    seed = NodeSeed(
        hostname="edge-seeded", instance_id="i-1", username="kairos", password_hash=hash_password("x", rounds=4)
    )
    return {"original": original, "derived": derived.path, "seed": build_seed_iso(seed, folder / "seed.iso")}


def machine(clock: ManualClock, iso: Path, seed: Path | None = None) -> Machine:
    m = Machine("node-1", clock=clock, timings=T)
    m.insert_media(iso.as_uri())
    if seed is not None:
        m.insert_seed(str(seed), seed.read_bytes())
    return m


def test_the_shipped_iso_waits_at_the_interactive_installer_and_ignores_the_seed(isos: dict[str, Path]) -> None:
    clock = ManualClock()
    m = machine(clock, isos["original"], isos["seed"])
    assert m.boot_menu.source.startswith("read from file://") and m.boot_menu.default == 2
    m.power_on()
    clock.advance(T.firmware + 1)
    stage, menu, _ = m.console_state()
    assert stage is Stage.BOOTING_INSTALLER and menu is not None and menu.remaining(clock()) == pytest.approx(4.0)
    clock.advance(MENU_TIMEOUT + T.installer_boot)
    assert m.stage is Stage.INSTALLER_WAITING and m.ssh_up and m.kairos_boot_state() == "livecd_boot"
    assert "interactive-install" in (m.cmdline() or "")
    clock.advance(T.install * 10)
    assert m.stage is Stage.INSTALLER_WAITING and not m.installed and m.seeded_with is None
    assert not any("Copying image" in line for line in m.journal())


def test_the_unattended_copy_installs_by_itself_with_the_seed(isos: dict[str, Path]) -> None:
    clock = ManualClock()
    m = machine(clock, isos["derived"], isos["seed"])
    assert m.boot_menu.default == 0
    m.power_on()
    clock.advance(T.firmware + MENU_TIMEOUT + T.installer_boot + 1)
    assert m.stage is Stage.INSTALLING and "interactive-install" not in (m.cmdline() or "")
    assert m.seeded_with is not None and m.seeded_with.hostname == "edge-seeded"
    assert m.post_install == "reboot"  # the seed's action wins over the ISO's config.yaml (poweroff)
    clock.advance(T.install + T.finish + T.reboot + T.firmware + T.os_boot + T.services)
    assert m.stage is Stage.RUNNING and m.installed


def test_without_a_seed_the_automatic_entry_follows_the_isos_config(isos: dict[str, Path]) -> None:
    clock = ManualClock()
    m = machine(clock, isos["derived"])
    m.power_on()
    clock.advance(T.firmware + MENU_TIMEOUT + T.installer_boot + T.install + T.finish + 1)
    assert m.installed and m.post_install == "poweroff" and m.stage is Stage.POWERED_OFF


def test_keys_during_the_countdown_pick_the_automatic_entry(isos: dict[str, Path]) -> None:
    clock = ManualClock()
    m = machine(clock, isos["original"], isos["seed"])
    m.power_on()
    assert m.press_keys(["home"]) == 0, "keys during the firmware are lost"
    clock.advance(T.firmware + 2)
    assert m.press_keys(["home"]) == 1
    clock.advance(MENU_TIMEOUT * 3)  # the countdown stopped: the menu waits
    stage, menu, _ = m.console_state()
    assert stage is Stage.BOOTING_INSTALLER and menu is not None and menu.highlight == 0 and menu.chosen is None
    assert m.press_keys(["down", "up", "up", "enter"]) == 4
    clock.advance(T.installer_boot + 1)
    assert m.stage is Stage.INSTALLING and m.seeded_with is not None


def test_keys_after_the_countdown_change_nothing(isos: dict[str, Path]) -> None:
    clock = ManualClock()
    m = machine(clock, isos["original"])
    m.power_on()
    clock.advance(T.firmware + MENU_TIMEOUT + 0.1)
    assert m.press_keys(["home", "enter"]) == 0
    clock.advance(T.installer_boot)
    assert m.stage is Stage.INSTALLER_WAITING


def test_unreadable_media_boot_by_the_labs_assumption() -> None:
    clock = ManualClock()
    interactive = Machine("a", clock=clock, timings=T)
    automatic = Machine("b", clock=clock, timings=T, assumed_media="automatic")
    for m in (interactive, automatic):
        m.insert_media("https://127.0.0.1:1/nowhere.iso")
        m.power_on()
    assert "cannot be read" in interactive.media_note or "not a readable ISO" in interactive.media_note
    clock.advance(T.firmware + MENU_TIMEOUT + T.installer_boot + 1)
    assert interactive.stage is Stage.INSTALLER_WAITING and automatic.stage is Stage.INSTALLING
    with pytest.raises(ValueError, match="media must be one of"):
        BootMenu.assumed("sometimes")


def test_menu_is_read_over_http_ranges(isos: dict[str, Path]) -> None:
    from wizard.providers.isoserver import IsoServer

    server = IsoServer("127.0.0.1", 0).start()
    try:
        url = server.publish(isos["derived"], "node-1-palette.iso")
        menu, note = read_menu(url)
        assert note == "" and menu is not None and menu.default == 0
        assert [i.kind for i in menu.items] == [EntryKind.AUTOMATIC, EntryKind.MANUAL, EntryKind.INTERACTIVE]
        assert menu.post_install == "poweroff"
        sent = sum(server.served("node-1-palette.iso").values())
        assert 0 < sent < isos["derived"].stat().st_size, "only the metadata was read"
    finally:
        server.stop()


def test_usb_hid_codes_name_keys() -> None:
    assert [key_name((code << 16) | 7) for code in (0x52, 0x51, 0x4A, 0x28)] == ["up", "down", "home", "enter"]
    assert key_name(0x04 << 16).startswith("hid-")
