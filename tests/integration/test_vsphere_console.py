"""A VM's console through vSphere's API against the extended simulator: the wizard's keys reach the lab machine as
its GRUB menu takes them, and its screenshots are the consoles the lab draws."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.vcsim_peer import (  # noqa: F401 - fixtures
    PASSWORD,
    SMALL_VM,
    VcsimServer,
    run_job,
    vcsim_binary_fixture,
    vcsim_fixture,
)
from tests.support.waiting import eventually
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.progress import Progress
from wizard.core.trust import TrustStore
from wizard.lab.artifacts import appliance_iso
from wizard.lab.bootmenu import MENU_TIMEOUT
from wizard.lab.clock import ManualClock
from wizard.lab.controlplane import VSphereWatcher, datastore_reader, datastore_writer
from wizard.lab.machine import Machine, Stage, Timings
from wizard.providers.vsphere import console, vms
from wizard.providers.vsphere.console import ConsoleScreens, KeyPlan, press_keys, type_boot_keys
from wizard.providers.vsphere.datastore import DatastoreClient, datastore_path, upload_file
from wizard.providers.vsphere.jobs import BootVmJob, PrepareVmJob
from wizard.providers.vsphere.session import connect

pytestmark = [pytest.mark.vsphere, pytest.mark.lab, pytest.mark.media]

T = Timings(firmware=1, installer_boot=2, install=30, reboot=1, os_boot=2, services=2)


def chosen(machine: Machine) -> int | None:
    """The menu entry the machine's GRUB booted (None while the menu waits)."""
    menu = machine.console_state()[1]
    return menu.chosen if menu is not None else None


def test_keys_pick_the_automatic_installer_and_screenshots_show_the_console(vcsim: VcsimServer, tmp_path: Path) -> None:
    settings = vcsim.settings()
    trust = TrustStore(tmp_path / "config")
    run_job(PrepareVmJob(settings, PASSWORD, trust, None, node="node-1", vm_name="pma-node-1", scheme="http"))
    iso = appliance_iso(tmp_path / "palette.iso")  # as shipped: GRUB's default is the interactive installer
    clock = ManualClock()
    machine = Machine("node-1", clock=clock, timings=T)
    with connect(settings, PASSWORD, trust, None, scheme="http") as session:
        target = datastore_path(settings.datastore, settings.iso_folder, iso.name)
        with DatastoreClient(session) as client:
            upload_file(client, iso, target, sha256="0" * 64, report=Progress().root(), cancel=CancelToken())
        watcher = VSphereWatcher(
            machine,
            session.si,
            "pma-node-1",
            interval=0.05,
            reader=datastore_reader(session),
            screens=datastore_writer(session),
        ).start()
        screens = ConsoleScreens(lambda: connect(settings, PASSWORD, trust, None, scheme="http"), tmp_path / "shots",
                                 interval=0.1)  # fmt: skip
        try:
            boot = BootVmJob(
                settings, PASSWORD, trust, None, node="node-1", vm_name="pma-node-1",
                iso_datastore_path=str(target), scheme="http", watch_screen=screens.watch,
            )  # fmt: skip
            assert run_job(boot)[0]["action"] == "powered-on"
            assert eventually(lambda: machine.powered_on)
            assert machine.boot_menu.default == 2 and machine.boot_menu.source.startswith("read from [")
            # GRUB's menu is on screen: the wizard's screenshot shows what the lab drew.
            clock.advance(T.firmware + 0.5)
            assert eventually(
                lambda: screens.path("node-1").is_file() and len(screens.path("node-1").read_bytes()) > 100
            )
            vm = session.find_vms("pma-node-1", session.datacenter())[0]
            shot = console.screenshot(session, vm)
            assert shot is not None and shot.startswith(b"\x89PNG\r\n\x1a\n")
            # Home (which stops the countdown) and Enter, as the boot job types them, reach the lab machine.
            plan = KeyPlan(keys=("home", "enter"), target="Palette eXtended Kubernetes Edge Installer",
                           countdown=MENU_TIMEOUT, interval=0.05, window=0.2)  # fmt: skip
            facts = type_boot_keys(vm, plan, CancelToken(), Progress().root())
            assert facts["sent"] == 2 and facts["home_presses"] >= 1
            assert eventually(lambda: chosen(machine) == 0)
            clock.advance(T.installer_boot + 1)
            assert machine.stage is Stage.INSTALLING
            assert "interactive-install" not in (machine.cmdline() or "")
        finally:
            screens.close()
            watcher.stop()
        assert screens.taken.get("node-1", 0) >= 1


def test_a_vm_that_is_off_takes_no_keys_and_gives_no_screenshot(vcsim: VcsimServer, tmp_path: Path) -> None:
    settings = vcsim.settings()
    trust = TrustStore(tmp_path / "config")
    run_job(PrepareVmJob(settings, PASSWORD, trust, None, node="node-1", vm_name="pma-off", scheme="http"))
    with connect(settings, PASSWORD, trust, None, scheme="http") as session:
        vm = vms.find_vm(session, "pma-off", "node-1")
        with pytest.raises(WizardError, match="not powered on"):
            press_keys(vm, ["enter"])
        assert console.screenshot(session, vm) is None
