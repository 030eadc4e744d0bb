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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import httpx

from wizard.core.redact import redact
from wizard.lab.bootmenu import MediaReader, key_name, range_stream
from wizard.lab.machine import Machine
from wizard.lab.sushyfaults import OBSERVER_HEADER

log = logging.getLogger(__name__)

#: Where the extended vcsim (tests/peers/vcsim/console.go) records the keys typed on a VM's console, and the file in
#: the VM's folder it returns as the console's screenshot.
KEYS_OPTION = "palette.lab.usbScanCodes"
CONSOLE_FILE = "console.png"


@dataclass(frozen=True)
class Observed:
    """What the control plane says about the machine right now."""

    powered_on: bool
    media: str | None  # the inserted image's URL or datastore path; None when nothing is inserted
    boot_from_media: bool  # the next boot goes to the CD (boot override or boot order)
    seed: str | None = None  # the second drive's image (a NoCloud seed): URL or datastore path
    #: Keys typed on the console so far (vSphere's PutUsbScanCodes as the extended vcsim records them): how many in
    #: all, and the HID usage ids (hex) of the latest ones.
    keys_total: int = 0
    keys: tuple[str, ...] = ()


class Watcher(ABC):
    """Mirrors a control plane's view of one machine onto a lab machine, from a background thread."""

    def __init__(self, machine: Machine, *, interval: float = 0.2) -> None:
        self.machine = machine
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: Observed | None = None
        self._keys_seen = 0
        self.errors = 0  # failed polls so far (the control plane may restart); visible for tests

    @abstractmethod
    def observe(self) -> Observed: ...

    def fetch_seed(self, source: str) -> bytes | None:
        """The second drive's image as the firmware reads it; None when it cannot be read."""
        return None

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
        if seen.seed != machine.seed_source:
            if seen.seed is None:
                machine.eject_seed()
            else:
                machine.insert_seed(seen.seed, self.fetch_seed(seen.seed))
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
        if seen.keys_total > self._keys_seen:
            new = seen.keys_total - self._keys_seen
            machine.press_keys([key_name(int(code, 16) << 16) for code in seen.keys[-new:]])
        self._keys_seen = max(self._keys_seen, seen.keys_total)
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
        # Marked as the lab's observer: the http-5xx knob is for the wizard, not for the hardware the lab plays.
        self._http = httpx.Client(
            base_url=base_url, auth=auth, verify=verify, timeout=5.0, headers={OBSERVER_HEADER: "1"}
        )
        self._verify = verify
        self._media_path: str | None = None
        self._other_media: list[str] = []

    def _get(self, path: str) -> dict[str, Any]:
        response = self._http.get(path)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def _find_media(self, system: dict[str, Any]) -> str | None:
        """The boot CD's path; the other drives that take an image (CD, DVD or USB stick) are remembered as the
        places a seed may be inserted."""
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
            cds: list[str] = []
            others: list[str] = []
            for member in members:
                media = self._get(member["@odata.id"])
                types = set(media.get("MediaTypes", []))
                if {"CD", "DVD"} & types:
                    cds.append(str(member["@odata.id"]))
                elif "USBStick" in types:
                    others.append(str(member["@odata.id"]))
            if cds:
                self._other_media = cds[1:] + others
                return cds[0]
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
        seed: str | None = None
        for path in self._other_media:
            other = self._get(path)
            if other.get("Inserted") and other.get("Image"):
                seed = str(other["Image"])
                break
        boot = system.get("Boot", {})
        to_cd = boot.get("BootSourceOverrideTarget") == "Cd" and boot.get("BootSourceOverrideEnabled") in (
            "Once",
            "Continuous",
        )
        return Observed(system.get("PowerState") == "On", media, to_cd, seed)

    def fetch_seed(self, source: str) -> bytes | None:
        """Download the image from its URL, as the BMC streams it to the machine's virtual drive."""
        try:
            with httpx.Client(verify=self._verify, timeout=10.0) as http:
                response = http.get(source)
                response.raise_for_status()
                return response.content
        except httpx.HTTPError as exc:
            log.warning("seed image %s could not be read: %s", redact(source), exc)
            return None

    def close(self) -> None:
        self._http.close()


class VSphereWatcher(Watcher):
    """Watches the VM named ``vm_name`` through a pyvmomi connection: power state, the first connected CD-ROM's
    ISO, and whether the boot order puts the CD first (an empty boot order lets the firmware try the CD when the disk
    has nothing to boot). Until the VM exists (the wizard creates it), the machine stays off."""

    def __init__(
        self,
        machine: Machine,
        service_instance: Any,
        vm_name: str,
        *,
        interval: float = 0.2,
        fetch: Callable[[str], bytes | None] | None = None,
        reader: MediaReader | None = None,
        screens: Callable[[str, bytes], None] | None = None,
    ) -> None:
        """``fetch`` reads a datastore file (``[ds] folder/name``) for the second CD drive's seed; without it a
        seed is seen but cannot be read, so the machine ignores it. ``reader`` opens a datastore file as a stream,
        for the machine to read the first drive's GRUB menu (:func:`datastore_reader`); without it the machine
        boots the lab's assumed menu. ``screens`` writes a datastore file (:func:`datastore_writer`): the machine's
        console is drawn as ``console.png`` in the VM's folder whenever it changes, for the simulator's
        ``CreateScreenshot_Task`` to return."""
        super().__init__(machine, interval=interval)
        self.si = service_instance
        self.vm_name = vm_name
        self.fetch = fetch
        self.screens = screens
        self._folder: str | None = None
        self._drawn: tuple[str, ...] | None = None
        if reader is not None:
            machine.media_reader = reader
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
        isos: list[str] = []
        drives = sorted(
            (d for d in config.hardware.device if isinstance(d, vim.vm.device.VirtualCdrom)), key=lambda d: d.key
        )
        for device in drives:
            if isinstance(device.backing, vim.vm.device.VirtualCdrom.IsoBackingInfo):
                connectable = device.connectable
                # vcsim leaves ``connected`` False on a powered-off VM; what boots is what starts connected.
                if connectable is not None and (connectable.connected or connectable.startConnected):
                    isos.append(str(device.backing.fileName))
        media = isos[0] if isos else None
        seed = isos[1] if len(isos) > 1 else None
        order = list(config.bootOptions.bootOrder or []) if config.bootOptions else []
        cd_first = not order or isinstance(order[0], vim.vm.BootOptions.BootableCdromDevice)
        keys_total = 0
        keys: tuple[str, ...] = ()
        for option in config.extraConfig or []:
            if option.key == KEYS_OPTION:
                total, _, codes = str(option.value).partition(":")
                keys_total, keys = int(total or 0), tuple(c for c in codes.split(",") if c)
        if config.files is not None and config.files.vmPathName:
            self._folder = str(config.files.vmPathName).rsplit("/", 1)[0]
        return Observed(powered_on, media, cd_first, seed, keys_total, keys)

    def poll_once(self) -> None:
        super().poll_once()
        if self.screens is None or self._folder is None:
            return
        from wizard.lab.screen import screenshot

        text, png = screenshot(self.machine)
        if text == self._drawn:
            return
        try:
            self.screens(f"{self._folder}/{CONSOLE_FILE}", png)
            self._drawn = text
        except Exception as exc:  # the simulator may be busy: draw again next poll
            log.debug("console of %s not drawn: %s", self.vm_name, exc)

    def fetch_seed(self, source: str) -> bytes | None:
        if self.fetch is None:
            return None
        try:
            return self.fetch(source)
        except Exception as exc:  # the datastore may be busy; the machine then ignores the seed, like firmware
            log.warning("seed image %s could not be read: %s", source, exc)
            return None


def datastore_reader(session: Any) -> MediaReader:
    """Opens ``[datastore] path`` files as seekable streams read with HTTP ranges through a vSphere session (for a
    machine reading the GRUB menu of the ISO on its first CD drive)."""
    from wizard.providers.vsphere.datastore import DatastoreClient, DatastoreFile

    def read(source: str) -> tuple[BinaryIO, int] | None:
        if not source.startswith("["):
            return None
        name, _, path = source.partition("] ")
        target = DatastoreFile(name.lstrip("["), path.strip())
        client = DatastoreClient(session)
        try:
            size = client.size(target)
        except Exception as exc:  # the simulator may be busy; the machine then boots the assumed menu
            client.close()
            log.warning("boot medium %s could not be read: %s", source, exc)
            return None
        if size is None:
            client.close()
            return None
        return range_stream(lambda start, end: client.read_range(target, start, end), size, client.close), size

    return read


def datastore_writer(session: Any) -> Callable[[str, bytes], None]:
    """Writes ``[datastore] path`` files through a vSphere session (the consoles :class:`VSphereWatcher` draws)."""
    from wizard.providers.vsphere.datastore import DatastoreClient, DatastoreFile

    def write(target: str, data: bytes) -> None:
        name, _, path = target.partition("] ")
        with DatastoreClient(session) as client:
            client.write_small(DatastoreFile(name.lstrip("["), path.strip()), data)

    return write


def datastore_fetcher(session: Any) -> Callable[[str], bytes | None]:
    """Reads ``[datastore] path`` files through a vSphere session's ``/folder`` transfers (for
    :class:`VSphereWatcher`'s ``fetch``)."""
    from wizard.providers.vsphere.datastore import DatastoreClient, DatastoreFile

    def fetch(source: str) -> bytes | None:
        name, _, path = source.partition("] ")
        with DatastoreClient(session) as client:
            return client.read_small(DatastoreFile(name.lstrip("["), path.strip()))

    return fetch
