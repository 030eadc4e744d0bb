"""Lab machines driven by real control planes: a node stays off until its BMC or its VM says otherwise.

A watcher polls one Redfish System (the sushy-tools emulator, or any BMC) or one vCenter VM (the govmomi simulator)
over the same protocol the wizard uses and mirrors what it sees onto a lab :class:`~wizard.lab.machine.Machine`:
media inserted or ejected, power on or off, a restart (seen as a power cycle). So a test or a rehearsal proves the
wizard's provider really booted the node: nothing but the control plane powers the lab machine on.

Polling, not events: neither Redfish eventing nor a property collector is needed for a lab that only has to notice
a change within a second or so. Every read is a plain GET (or a property read), so the watcher never changes what
it watches.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import httpx

from wizard.lab.machine import Machine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observed:
    """What the control plane says about the machine right now."""

    powered_on: bool
    media: str | None  # the inserted image's URL or datastore path; None when nothing is inserted
    boot_from_media: bool  # the next boot goes to the CD (boot override or boot order)


class Watcher(ABC):
    """Mirrors a control plane's view of one machine onto a lab machine, from a background thread."""

    def __init__(self, machine: Machine, *, interval: float = 0.2) -> None:
        self.machine = machine
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: Observed | None = None
        self.errors = 0  # failed polls so far (the control plane may restart); visible for tests

    @abstractmethod
    def observe(self) -> Observed: ...

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release the watcher's connection."""

    def apply(self, seen: Observed) -> None:
        """Make the machine match ``seen``: media first, then power, so a power-on boots what was inserted."""
        last = self._last
        machine = self.machine
        wanted_media = seen.media if seen.boot_from_media else None
        if wanted_media != machine.media:
            if wanted_media is None:
                machine.eject_media()
            else:
                machine.insert_media(wanted_media)
        if last is None:
            if seen.powered_on and not machine.powered_on:
                machine.power_on()
            elif not seen.powered_on and machine.powered_on:
                machine.power_off()
        elif seen.powered_on != last.powered_on:
            if seen.powered_on:
                machine.power_on()
            else:
                machine.power_off()
        self._last = seen

    def poll_once(self) -> None:
        try:
            seen = self.observe()
        except Exception as exc:  # the peer may be restarting; keep the machine as it is and look again
            self.errors += 1
            log.debug("control plane poll failed: %s", exc)
            return
        self.apply(seen)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.interval)

    def start(self) -> Watcher:
        self.poll_once()
        self._thread = threading.Thread(target=self._loop, name=f"watch-{self.machine.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.close()


class RedfishWatcher(Watcher):
    """Watches ``/redfish/v1/Systems/<id>``: PowerState, the boot override, and the System's (or its Manager's)
    CD-capable VirtualMedia."""

    def __init__(
        self,
        machine: Machine,
        base_url: str,
        system_path: str,
        *,
        auth: tuple[str, str] | None = None,
        verify: Any = True,
        interval: float = 0.2,
    ) -> None:
        super().__init__(machine, interval=interval)
        self.system_path = system_path
        self._http = httpx.Client(base_url=base_url, auth=auth, verify=verify, timeout=5.0)
        self._media_path: str | None = None

    def _get(self, path: str) -> dict[str, Any]:
        response = self._http.get(path)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def _find_media(self, system: dict[str, Any]) -> str | None:
        collections = []
        if "VirtualMedia" in system:
            collections.append(system["VirtualMedia"]["@odata.id"])
        for manager in system.get("Links", {}).get("ManagedBy", []):
            mgr = self._get(manager["@odata.id"])
            if "VirtualMedia" in mgr:
                collections.append(mgr["VirtualMedia"]["@odata.id"])
        for collection in collections:
            try:
                members = self._get(collection).get("Members", [])
            except httpx.HTTPStatusError:
                continue
            for member in members:
                media = self._get(member["@odata.id"])
                if {"CD", "DVD"} & set(media.get("MediaTypes", [])):
                    return str(member["@odata.id"])
        return None

    def observe(self) -> Observed:
        system = self._get(self.system_path)
        if self._media_path is None:
            self._media_path = self._find_media(system)
        media: str | None = None
        if self._media_path is not None:
            vm = self._get(self._media_path)
            if vm.get("Inserted") and vm.get("Image"):
                media = str(vm["Image"])
        boot = system.get("Boot", {})
        to_cd = boot.get("BootSourceOverrideTarget") == "Cd" and boot.get("BootSourceOverrideEnabled") in (
            "Once",
            "Continuous",
        )
        return Observed(system.get("PowerState") == "On", media, to_cd)

    def close(self) -> None:
        self._http.close()


class VSphereWatcher(Watcher):
    """Watches the VM named ``vm_name`` through a pyvmomi connection: power state, the first connected CD-ROM's
    ISO, and whether the boot order puts the CD first (an empty boot order lets the firmware try the CD when the disk
    has nothing to boot). Until the VM exists (the wizard creates it), the machine stays off."""

    def __init__(self, machine: Machine, service_instance: Any, vm_name: str, *, interval: float = 0.2) -> None:
        super().__init__(machine, interval=interval)
        self.si = service_instance
        self.vm_name = vm_name
        self._vm: Any = None

    def _find(self) -> Any:
        from pyVmomi import vim

        content = self.si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        try:
            return next((vm for vm in view.view if vm.name == self.vm_name), None)
        finally:
            view.Destroy()

    def observe(self) -> Observed:
        from pyVmomi import vim

        if self._vm is None:
            self._vm = self._find()
            if self._vm is None:
                return Observed(False, None, False)
        config = self._vm.config
        powered_on = str(self._vm.runtime.powerState) == "poweredOn"
        media: str | None = None
        for device in config.hardware.device:
            if isinstance(device, vim.vm.device.VirtualCdrom) and isinstance(
                device.backing, vim.vm.device.VirtualCdrom.IsoBackingInfo
            ):
                connectable = device.connectable
                # vcsim leaves ``connected`` False on a powered-off VM; what boots is what starts connected.
                if connectable is not None and (connectable.connected or connectable.startConnected):
                    media = str(device.backing.fileName)
                    break
        order = list(config.bootOptions.bootOrder or []) if config.bootOptions else []
        cd_first = not order or isinstance(order[0], vim.vm.BootOptions.BootableCdromDevice)
        return Observed(powered_on, media, cd_first)
