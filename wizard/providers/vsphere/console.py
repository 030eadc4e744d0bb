# pyVmomi's stubs type every managed property as Optional and its data-object constructors as untyped (as in
# checks.py): only those two codes are off here.
# mypy: disable-error-code="union-attr,no-untyped-call"
"""A VM's console through vSphere's own API: keys (``PutUsbScanCodes``) and screenshots (``CreateScreenshot_Task``).

Keys (``appliance.boot: keys``): right after power-on the VM's firmware runs, then GRUB shows the ISO's menu and
counts down (5 s on the appliance ISO) to its default, the interactive installer. Keys typed before the menu appears
are lost, and nothing tells the wizard when it appears, so it presses Home every ``interval`` seconds (shorter than
the countdown) for ``window`` seconds — the first Home that reaches the menu stops the countdown and selects the first
entry; GRUB's Home and Up never wrap around, so the presses that follow change nothing — then Home, Down to the
automatic installer, Enter. That is how Packer's ``boot_command`` drives vSphere consoles (USB HID usage ids in the
upper 16 bits of ``usbHidCode``). Whether it worked shows in the install itself: the install monitor sees the
installer run, or sees the node wait at the interactive installer and says so.

Screenshots: ``CreateScreenshot_Task`` writes a PNG into the VM's folder on its datastore and returns its path; the
wizard downloads it (and deletes it, so screenshots do not pile up beside the VM). :class:`ConsoleScreens` keeps
the latest one of each booting VM in a folder the desktop wizard shows on its Install page, refreshed until the node
is installed. A vCenter or a simulator without the method (``MethodNotFound``), or a user without
``VirtualMachine.Interact.CreateScreenshot``, just gets no screenshots: they are a view, never a requirement.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyVmomi import vim, vmodl

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.fsutil import atomic_write_bytes
from wizard.core.progress import Reporter
from wizard.providers.vsphere.errors import VsphereError

log = logging.getLogger(__name__)

#: USB HID usage ids (USB HID Usage Tables 1.12, keyboard page 0x07) of the keys GRUB's menu acts on.
HID_USAGE = {"enter": 0x28, "escape": 0x29, "home": 0x4A, "end": 0x4D, "down": 0x51, "up": 0x52}


@dataclass(frozen=True)
class KeyPlan:
    """What to type on a VM's console after power-on to boot GRUB's automatic installer entry."""

    keys: tuple[str, ...]  # the final sequence, e.g. ("home", "enter")
    target: str  # the entry's title, for messages
    countdown: float  # GRUB's timeout, seconds
    interval: float = 1.0  # between the Home presses that wait for the menu (kept below ``countdown``)
    window: float = 30.0  # how long the firmware may take before GRUB's menu shows

    @property
    def every(self) -> float:
        return max(0.05, min(self.interval, self.countdown / 3 if self.countdown > 0 else self.interval))


def press_keys(vm: vim.VirtualMachine, keys: Sequence[str]) -> int:
    """Type ``keys`` on the VM's console; returns how many events vSphere took."""
    events = [vim.vm.UsbScanCodeSpec.KeyEvent(usbHidCode=(HID_USAGE[k] << 16) | 0x0007) for k in keys]
    try:
        return int(vm.PutUsbScanCodes(vim.vm.UsbScanCodeSpec(keyEvents=events)))
    except vmodl.fault.MethodNotFound as exc:
        raise VsphereError(
            "No keyboard API",
            f"this vCenter does not offer PutUsbScanCodes on {vm.name} (vSphere 6.5 and later do)",
            remediation="use appliance.boot: unattended (the wizard's copy of the ISO needs no keys)",
        ) from exc
    except vim.fault.NoPermission as exc:
        raise VsphereError(
            "Keyboard not allowed",
            f"the vCenter user may not type on {vm.name}'s console",
            remediation="grant VirtualMachine.Interact.PutUsbScanCodes on the VMs, or use appliance.boot: unattended",
        ) from exc
    except vim.fault.InvalidPowerState as exc:
        raise VsphereError(
            "VM not running",
            f"{vm.name} is not powered on, so its console takes no keys",
            remediation="power the VM on, then run the boot step again",
        ) from exc


def type_boot_keys(
    vm: vim.VirtualMachine,
    plan: KeyPlan,
    cancel: CancelToken,
    report: Reporter,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Press Home until GRUB's menu surely shows, then the plan's keys (see the module's text); facts of what was
    typed."""
    started = clock()
    presses = 0
    report.update(0.1, f"pressing Home on {vm.name}'s console until GRUB's menu shows (up to {plan.window:g} s)")
    while clock() - started < plan.window:
        cancel.raise_if_cancelled()
        presses += press_keys(vm, ["home"])
        cancel.sleep(plan.every)
    cancel.raise_if_cancelled()
    sent = press_keys(vm, list(plan.keys))
    report.update(0.9, f"typed {' '.join(plan.keys)} on {vm.name}'s console to boot {plan.target!r}")
    return {"keys": list(plan.keys), "home_presses": presses, "sent": sent, "target": plan.target}


def screenshot(
    session: Any, vm: vim.VirtualMachine, *, timeout: float = 60.0, cancel: CancelToken | None = None
) -> bytes | None:
    """The VM's console as a PNG, or None when vSphere offers no screenshot of it (method missing, no
    permission, VM off). The file vSphere wrote beside the VM is deleted once read."""
    from wizard.providers.vsphere.datastore import DatastoreClient, DatastoreFile
    from wizard.providers.vsphere.vms import wait_task

    try:
        task = vm.CreateScreenshot_Task()
    except (vmodl.fault.MethodNotFound, vim.fault.NoPermission, vim.fault.InvalidPowerState) as exc:
        log.debug("no screenshot of %s: %s", vm.name, getattr(exc, "msg", exc))
        return None
    try:
        path = str(wait_task(task, f"taking a screenshot of {vm.name}", cancel or CancelToken()) or "")
    except VsphereError as exc:
        log.debug("screenshot of %s failed: %s", vm.name, exc.message)
        return None
    if not path.startswith("["):
        return None
    name, _, rest = path.partition("] ")
    target = DatastoreFile(name.lstrip("["), rest.strip())
    with DatastoreClient(session, timeout=timeout, cancel=cancel) as client:
        data = client.read_small(target)
    try:
        dc = session.datacenter()
        session.si.content.fileManager.DeleteDatastoreFile_Task(name=path, datacenter=dc)
    except vmodl.MethodFault as exc:  # a screenshot left behind is untidy, not wrong
        log.debug("could not delete %s: %s", path, getattr(exc, "msg", exc))
    return data


class ConsoleScreens:
    """The latest console screenshot of each registered VM, refreshed from one background thread into
    ``folder/<node>.png`` (written atomically, so a reader never sees half a file) until the node is dropped or the
    run ends. Plain files: the desktop wizard polls the folder."""

    def __init__(
        self,
        connect: Callable[[], Any],
        folder: Path,
        *,
        interval: float = 5.0,
    ) -> None:
        self.connect = connect
        self.folder = folder
        self.interval = interval
        self._vms: dict[str, str] = {}  # node -> VM name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.taken: dict[str, int] = {}  # node -> screenshots written, for tests and the log

    def watch(self, node: str, vm_name: str) -> None:
        with self._lock:
            self._vms[node] = vm_name
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="vsphere-screens", daemon=True)
                self._thread.start()

    def drop(self, node: str) -> None:
        with self._lock:
            self._vms.pop(node, None)

    def path(self, node: str) -> Path:
        return self.folder / f"{node}.png"

    def _loop(self) -> None:
        session_cm: Any = None
        session: Any = None
        unsupported: set[str] = set()
        try:
            while not self._stop.is_set():
                with self._lock:
                    vms = dict(self._vms)
                try:
                    if vms and session is None:
                        session_cm = self.connect()
                        session = session_cm.__enter__()
                    for node, vm_name in vms.items():
                        if node in unsupported or self._stop.is_set():
                            continue
                        self._take(session, node, vm_name, unsupported)
                except (WizardError, vmodl.MethodFault, OSError) as exc:
                    log.debug("console screenshots: %s", exc)
                    if session_cm is not None:
                        session_cm.__exit__(None, None, None)
                    session_cm = session = None
                self._stop.wait(self.interval)
        finally:
            if session_cm is not None:
                session_cm.__exit__(None, None, None)

    def _take(self, session: Any, node: str, vm_name: str, unsupported: set[str]) -> None:
        matches = session.find_vms(vm_name, session.datacenter())
        if len(matches) != 1:
            return
        data = screenshot(session, matches[0])
        if data is None:
            if str(matches[0].runtime.powerState) == "poweredOn":
                unsupported.add(node)  # this vCenter or user has no screenshots for it: stop asking
            return
        atomic_write_bytes(self.path(node), data, mode=0o644)
        self.taken[node] = self.taken.get(node, 0) + 1

    def close(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(30)
