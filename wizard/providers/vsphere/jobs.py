"""The vSphere jobs the engine runs: ISO upload, VM preparation, anti-affinity, boot and eject.

Each job is built from plain values (settings, the resolved password, the trust store, the confirm callable), opens
its own vCenter session in ``run`` and logs out at the end. All of them are safe to run again: they look at vCenter
first and skip what is already done (see each class for its rule). ``scheme="http"`` exists for the simulator in
tests only; the project file cannot choose it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from wizard.core.cancel import CancelToken
from wizard.core.jobs import Job
from wizard.core.progress import Reporter
from wizard.core.project import VmMode, VsphereSettings
from wizard.core.trust import Confirm, TrustStore
from wizard.providers.vsphere import vms
from wizard.providers.vsphere.console import KeyPlan, type_boot_keys
from wizard.providers.vsphere.datastore import CHUNK, DatastoreClient, datastore_path, upload_file
from wizard.providers.vsphere.errors import VsphereError
from wizard.providers.vsphere.session import connect


class _VsphereJob(Job):
    def __init__(
        self,
        settings: VsphereSettings,
        password: str,
        trust: TrustStore,
        confirm: Confirm | None,
        *,
        scheme: str = "https",
    ) -> None:
        self.settings = settings
        self._password = password
        self.trust = trust
        self.confirm = confirm
        self.scheme = scheme

    def _connect(self) -> Any:
        return connect(self.settings, self._password, self.trust, self.confirm, scheme=self.scheme)

    def _fp(self, *parts: object) -> str:
        s = self.settings
        base = [s.server, s.port, s.datacenter, *parts]
        return hashlib.sha256("\n".join(str(p) for p in base).encode()).hexdigest()[:16]


class UploadIsoJob(_VsphereJob):
    """Uploads the ISO (or a node's seed ISO) to ``[datastore] <iso_folder>/<remote_name>``.

    Skipped, with nothing sent, when the datastore's sidecar record names the same sha256 and size (see
    :mod:`wizard.providers.vsphere.datastore`). ``sha256`` is the digest the Verify files step computed; the upload
    refuses a file whose size or modification time changes while it is sent.
    """

    weight = 5.0

    def __init__(
        self,
        settings: VsphereSettings,
        password: str,
        trust: TrustStore,
        confirm: Confirm | None,
        *,
        local_path: Path,
        sha256: str,
        remote_name: str,
        node: str = "",
        scheme: str = "https",
        chunk: int = CHUNK,
        resolve: Callable[[], tuple[Path, str]] | None = None,
    ) -> None:
        """``resolve``, when given, names the file to send only when the job runs (path, sha256): a file another
        job makes (the unattended copy of the ISO); ``local_path`` and ``sha256`` then name its source."""
        super().__init__(settings, password, trust, confirm, scheme=scheme)
        self.resolve = resolve
        self.local_path = local_path
        self.sha256 = sha256.lower()
        self.remote_name = remote_name
        self.node = node
        self.chunk = chunk
        self.id = f"vsphere/seed/{node}" if node else "vsphere/iso"
        self.name = f"Seed ISO for {node}" if node else "ISO on the datastore"
        self.target = datastore_path(settings.datastore, settings.iso_folder, remote_name)

    def fingerprint(self) -> str:
        return self._fp(self.target, self.sha256)

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        local_path, sha256 = self.resolve() if self.resolve is not None else (self.local_path, self.sha256)
        size = local_path.stat().st_size
        with self._connect() as session:
            dc = session.datacenter()
            session.datastore(dc)  # a wrong name fails here with the datastores that do exist
            with DatastoreClient(session, dc, cancel=cancel) as client:
                sent = upload_file(
                    client,
                    local_path,
                    self.target,
                    sha256=sha256,
                    report=report,
                    cancel=cancel,
                    chunk=self.chunk,
                )
        report.finish()
        return {"datastore_path": str(self.target), "size": size, "sha256": sha256, "uploaded": sent}


class PrepareVmJob(_VsphereJob):
    """Creates the node's VM to spec (``vm_mode: create``) or validates the operator's VM (``existing``).

    Create mode finds a VM of this name carrying the node's marker and validates it instead of creating a second
    one; a same-named VM without the marker stops the job. ``index`` (the node's position in the project) spreads
    the nodes over the cluster's hosts; without it the host running the fewest of the wizard's VMs is chosen.
    """

    weight = 2.0

    def __init__(
        self,
        settings: VsphereSettings,
        password: str,
        trust: TrustStore,
        confirm: Confirm | None,
        *,
        node: str,
        vm_name: str,
        index: int | None = None,
        scheme: str = "https",
    ) -> None:
        super().__init__(settings, password, trust, confirm, scheme=scheme)
        self.node = node
        self.vm_name = vm_name
        self.index = index
        self.id = f"vsphere/vm/{node}"
        self.name = f"VM {vm_name}"

    def fingerprint(self) -> str:
        s = self.settings
        return self._fp(self.vm_name, s.vm_mode, s.vm, s.datastore, s.network, s.cluster, s.folder, s.resource_pool)

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        with self._connect() as session:
            if self.settings.vm_mode is VmMode.EXISTING:
                vm = vms.adopt_existing(session, self.node, self.vm_name, cancel, report)
                created = False
            else:
                vm, created = vms.create_vm(session, self.node, self.vm_name, cancel, report, index=self.index)
            host = vm.runtime.host
            facts = {"moref": vm._moId, "host": str(host.name) if host is not None else "", "created": created}
        report.finish()
        return facts


class AntiAffinityJob(_VsphereJob):
    """A DRS anti-affinity rule over the node VMs; skipped (with the reason as its message) when DRS is off or the
    cluster has fewer usable hosts than VMs. Rerunning leaves an identical rule alone."""

    id = "vsphere/anti-affinity"
    name = "DRS anti-affinity rule"
    weight = 0.5

    def __init__(
        self,
        settings: VsphereSettings,
        password: str,
        trust: TrustStore,
        confirm: Confirm | None,
        *,
        vm_names: list[str],
        rule_name: str,
        scheme: str = "https",
    ) -> None:
        super().__init__(settings, password, trust, confirm, scheme=scheme)
        self.vm_names = list(vm_names)
        self.rule_name = rule_name

    def fingerprint(self) -> str:
        return self._fp(self.settings.cluster, self.rule_name, *sorted(self.vm_names))

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        with self._connect() as session:
            dc = session.datacenter()
            found = []
            for name in self.vm_names:
                matches = session.find_vms(name, dc)
                if len(matches) != 1:
                    raise VsphereError(
                        "VM not found" if not matches else "Several VMs with one name",
                        f"{len(matches)} VMs named {name!r} for the anti-affinity rule",
                        remediation="run the Prepare VMs step first; VM names must be unique",
                    )
                found.append(matches[0])
            result = vms.anti_affinity(session, found, self.rule_name, cancel)
        report.finish(result.message)
        return {"rule": self.rule_name, "action": result.action, "message": result.message, "key": result.key}


class BootVmJob(_VsphereJob):
    """ISO on CD/DVD drive 1 (seed ISO on drive 2), boot order CD then disk, power on; with ``keys``, type the keys
    that boot GRUB's automatic installer (:mod:`wizard.providers.vsphere.console`). ``watch_screen`` is told the node
    and VM name first, so its console screenshots follow the boot.

    Safe to rerun (rule in :mod:`wizard.providers.vsphere.vms`): a VM already running from this ISO is left alone,
    a VM that was installed from it and ejected is not booted again, and a VM running anything else is reset.
    """

    weight = 1.0

    def __init__(
        self,
        settings: VsphereSettings,
        password: str,
        trust: TrustStore,
        confirm: Confirm | None,
        *,
        node: str,
        vm_name: str,
        iso_datastore_path: str,
        seed_datastore_path: str = "",
        scheme: str = "https",
        keys: KeyPlan | None = None,
        watch_screen: Callable[[str, str], None] | None = None,
    ) -> None:
        super().__init__(settings, password, trust, confirm, scheme=scheme)
        self.node = node
        self.vm_name = vm_name
        self.iso = iso_datastore_path
        self.seed = seed_datastore_path
        self.keys = keys
        self.watch_screen = watch_screen
        self.id = f"vsphere/boot/{node}"
        self.name = f"Boot {vm_name} from the ISO"

    def fingerprint(self) -> str:
        return self._fp(self.vm_name, self.iso, self.seed, self.keys.keys if self.keys else "")

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        if self.watch_screen is not None:
            self.watch_screen(self.node, self.vm_name)
        with self._connect() as session:
            vm = vms.find_vm(session, self.vm_name, self.node)
            result = vms.attach_and_boot(
                session, vm, iso=self.iso, seed=self.seed, cancel=cancel, report=report.child(0.0, 0.3)
            )
            facts: dict[str, Any] = {
                "moref": vm._moId,
                "action": result.action,
                "isos": list(result.isos),
                "boot_order": list(result.boot_order),
                "power": str(vm.runtime.powerState),
            }
            # Keys only into a boot this run started: a VM already booting (a resumed run) is past GRUB's menu.
            if self.keys is not None and result.action in ("powered-on", "reset"):
                facts["console_keys"] = type_boot_keys(vm, self.keys, cancel, report.child(0.3, 0.7))
        report.finish()
        return facts


class EjectVmJob(_VsphereJob):
    """Disconnects the ISO(s) and restores disk-first boot, so a reboot never reinstalls. Idempotent."""

    weight = 0.5

    def __init__(
        self,
        settings: VsphereSettings,
        password: str,
        trust: TrustStore,
        confirm: Confirm | None,
        *,
        node: str,
        vm_name: str,
        scheme: str = "https",
    ) -> None:
        super().__init__(settings, password, trust, confirm, scheme=scheme)
        self.node = node
        self.vm_name = vm_name
        self.id = f"vsphere/eject/{node}"
        self.name = f"Eject the ISO from {vm_name}"

    def fingerprint(self) -> str:
        return self._fp(self.vm_name)

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        with self._connect() as session:
            vm = vms.find_vm(session, self.vm_name, self.node)
            changed = vms.eject(vm, cancel, report)
            facts = {"moref": vm._moId, "ejected": changed, "boot_order": vms.boot_order(vm)}
        report.finish()
        return facts


def guest_address(  # noqa: PLR0917 - the call shape the engine uses
    settings: VsphereSettings,
    password: str,
    trust: TrustStore,
    confirm: Confirm | None,
    vm_name: str,
    timeout: float,
    cancel: CancelToken,
    *,
    node: str = "",
    poll: float = 2.0,
    scheme: str = "https",
) -> tuple[str, str]:
    """The VM's (IP, host name) once VMware Tools reports an IP; raises after ``timeout`` seconds."""
    with connect(settings, password, trust, confirm, scheme=scheme) as session:
        vm = vms.find_vm(session, vm_name, node)
        return vms.wait_guest(vm, timeout, cancel, poll=poll)
