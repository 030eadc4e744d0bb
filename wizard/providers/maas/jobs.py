"""The jobs the engine runs against MAAS: allocate, boot through the BMC, eject, release."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job
from wizard.core.progress import Reporter
from wizard.core.trust import Confirm, TrustStore
from wizard.providers.maas.client import MaasClient
from wizard.providers.maas.machines import ManualInstruction, RedfishTarget, boot_route, resolve

if TYPE_CHECKING:
    from wizard.providers.isoserver import IsoServer
    from wizard.providers.redfish.jobs import RedfishTimeouts


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()[:16]


class AllocateMachinesJob(Job):
    """Allocate the project's machines to the key's user (with a comment), keeping those already allocated to it.

    With ``agent_name`` (one per session) a rerun can tell the machines this session allocated from ones the
    operator had allocated beforehand, even when the first run stopped before its facts were recorded: only the
    former are released when the operator aborts.
    """

    id = "maas/allocate"
    name = "MAAS machines allocated"

    def __init__(
        self,
        url: str,
        api_key: str,
        verify: ssl.SSLContext | bool,
        *,
        refs: Sequence[str],
        comment: str,
        agent_name: str = "",
        timeout: float = 30,
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.verify = verify
        self.refs = list(refs)
        self.comment = comment
        self.agent_name = agent_name
        self.timeout = timeout
        self.weight = max(1.0, len(self.refs) / 2)

    def fingerprint(self) -> str:
        return _fingerprint(self.url, *self.refs, self.agent_name)

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        with MaasClient(self.url, self.api_key, verify=self.verify, timeout=self.timeout, cancel=cancel) as client:
            report.update(0.02, f"Connecting to MAAS at {self.url}…")
            me = client.whoami().username
            machines = resolve(client, self.refs, me=me)
            report.update(0.2, f"{len(machines)} machines usable")
            ours = {m.system_id for m in client.machines(agent_name=self.agent_name)} if self.agent_name else set()
            allocated: list[str] = []
            kept: list[str] = []
            total = max(1, len(machines))
            for i, machine in enumerate(machines):
                cancel.raise_if_cancelled()
                if machine.allocated_to(me):
                    (allocated if machine.system_id in ours else kept).append(machine.system_id)
                    report.update(0.2 + 0.8 * (i + 1) / total, f"{machine.label} is already allocated to {me}")
                    continue
                report.update(0.2 + 0.8 * i / total, f"Allocating {machine.label}…")
                try:
                    got = client.allocate(machine.system_id, self.comment, user=me, agent_name=self.agent_name)
                except WizardError as exc:
                    if exc.title != "MAAS machine not available":
                        raise
                    # Taken between the check and the allocation, by us in a lost earlier attempt or by someone else.
                    got = client.machine(machine.system_id)
                    if not got.allocated_to(me):
                        raise WizardError(
                            "MAAS machine taken",
                            f"{machine.label} was allocated to {got.owner or 'someone else'} before the wizard "
                            f"could allocate it ({got.status_name})",
                            details=exc.message,
                            remediation="choose another machine, or ask its owner to release it",
                        ) from exc
                if got.system_id != machine.system_id or not got.allocated_to(me):
                    raise WizardError(
                        "Unexpected MAAS answer",
                        f"allocating {machine.label} returned {got.label} ({got.status_name}, owner {got.owner})",
                    )
                allocated.append(machine.system_id)
                report.update(0.2 + 0.8 * (i + 1) / total, f"{machine.label} allocated")
        report.finish(f"{len(machines)} MAAS machines allocated to {me}")
        return {
            "user": me,
            "machines": {ref: m.system_id for ref, m in zip(self.refs, machines, strict=True)},
            "system_ids": [m.system_id for m in machines],
            "allocated": allocated,
            "kept": kept,
        }


class ReleaseMachinesJob(Job):
    """Release the machines this session allocated (``system_ids`` from the allocate job's facts), e.g. on abort.

    Machines already Ready, or owned by someone else by now, are left alone.
    """

    id = "maas/release"
    name = "MAAS machines released"

    def __init__(
        self,
        url: str,
        api_key: str,
        verify: ssl.SSLContext | bool,
        *,
        system_ids: Sequence[str],
        comment: str,
        agent_name: str = "",
        timeout: float = 30,
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.verify = verify
        self.system_ids = list(system_ids)
        self.comment = comment
        #: When given, only machines MAAS lists under this agent name are released: the same user's machines
        #: allocated by another project (or by hand) stay allocated.
        self.agent_name = agent_name
        self.timeout = timeout

    def fingerprint(self) -> str:
        return _fingerprint(self.url, *self.system_ids)

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        released: list[str] = []
        skipped: dict[str, str] = {}
        with MaasClient(self.url, self.api_key, verify=self.verify, timeout=self.timeout, cancel=cancel) as client:
            me = client.whoami().username
            ours = {m.system_id for m in client.machines(agent_name=self.agent_name)} if self.agent_name else None
            total = max(1, len(self.system_ids))
            for i, system_id in enumerate(self.system_ids):
                cancel.raise_if_cancelled()
                try:
                    machine = client.machine(system_id)
                except WizardError as exc:
                    if exc.title != "Unknown MAAS machine":
                        raise
                    skipped[system_id] = "not visible to this user any more"
                    continue
                if machine.owner != me or (ours is not None and system_id not in ours):
                    skipped[system_id] = f"{machine.status_name}, owner {machine.owner or 'none'}"
                    report.update((i + 1) / total, f"{machine.label} is not ours any more; left alone")
                    continue
                report.update(i / total, f"Releasing {machine.label}…")
                client.release(system_id, self.comment)
                released.append(system_id)
                report.update((i + 1) / total, f"{machine.label} released")
        report.finish(f"{len(released)} MAAS machines released")
        return {"released": released, "skipped": skipped}


def _redfish_target(client: MaasClient, node: str, system_id: str) -> RedfishTarget:
    machine = client.machine(system_id)
    route = boot_route(machine, client.power_parameters(system_id))
    if isinstance(route, ManualInstruction):
        raise WizardError(
            "MAAS boot route changed",
            f"MAAS no longer drives {machine.label} (node {node}) through Redfish: "
            f"{route.reason or f'its power type is {route.power_type}'}",
            remediation="run again: the wizard then reads the power settings afresh and says what to do by hand",
        )
    return route


class MaasRedfishBootJob(Job):
    """Boot a MAAS machine from the ISO through its Redfish BMC, with the BMC credentials MAAS keeps.

    The credentials are read from MAAS when the job runs and handed to :class:`RedfishBootJob` in memory only: they
    are never journaled or logged (the password is registered with the redactor as it arrives). The BMC's TLS
    certificate is verified by the system store or pinned after the operator confirms, as for the Redfish provider.
    """

    weight = 3.0

    def __init__(
        self,
        node: str,
        url: str,
        api_key: str,
        verify: ssl.SSLContext | bool,
        *,
        system_id: str,
        iso_url: str,
        trust: TrustStore,
        confirm: Confirm | None,
        iso_server: IsoServer | None = None,
        timeouts: RedfishTimeouts | None = None,
        step: str = "boot",
        timeout: float = 30,
        seed_url: str = "",
    ) -> None:
        self.id = f"{step}/{node}"
        self.name = node
        self.node = node
        self.url = url
        self.api_key = api_key
        self.verify = verify
        self.system_id = system_id
        self.iso_url = iso_url
        self.seed_url = seed_url  # the node's NoCloud seed, inserted as a second medium like the Redfish provider
        self.trust = trust
        self.confirm = confirm
        self.iso_server = iso_server
        self.timeouts = timeouts
        self.timeout = timeout

    def fingerprint(self) -> str:
        # The whole URL (token included, hashed): a BMC holding a URL that no longer serves must get the new one.
        return _fingerprint("maas-redfish-boot", self.node, self.url, self.system_id, self.iso_url, self.seed_url)

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        from wizard.providers.redfish.jobs import RedfishBootJob

        report.update(0.0, f"{self.node}: reading its BMC settings from MAAS")
        with MaasClient(self.url, self.api_key, verify=self.verify, timeout=self.timeout, cancel=cancel) as client:
            target = _redfish_target(client, self.node, self.system_id)
        cancel.raise_if_cancelled()
        boot = RedfishBootJob(
            self.node,
            target.boot_bmc,
            target.password,
            self.iso_url,
            trust=self.trust,
            confirm=self.confirm,
            iso_server=self.iso_server,
            timeouts=self.timeouts,
            seed_url=self.seed_url,
        )
        facts = dict(boot.run(report.child(0.05, 0.95), cancel) or {})
        report.finish(f"{self.node}: booting from the ISO through its Redfish BMC")
        return {**facts, "route": "redfish", "system_id": self.system_id, "bmc": target.boot_bmc.address}


class MaasRedfishEjectJob(Job):
    """Eject the ISO from a MAAS machine's Redfish BMC and clear the CD boot override (credentials from MAAS)."""

    weight = 0.5

    def __init__(
        self,
        node: str,
        url: str,
        api_key: str,
        verify: ssl.SSLContext | bool,
        *,
        system_id: str,
        trust: TrustStore,
        confirm: Confirm | None,
        timeouts: RedfishTimeouts | None = None,
        step: str = "eject",
        timeout: float = 30,
    ) -> None:
        self.id = f"{step}/{node}"
        self.name = node
        self.node = node
        self.url = url
        self.api_key = api_key
        self.verify = verify
        self.system_id = system_id
        self.trust = trust
        self.confirm = confirm
        self.timeouts = timeouts
        self.timeout = timeout

    def fingerprint(self) -> str:
        return _fingerprint("maas-redfish-eject", self.node, self.url, self.system_id)

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        from wizard.providers.redfish.jobs import RedfishEjectJob

        report.update(0.0, f"{self.node}: reading its BMC settings from MAAS")
        with MaasClient(self.url, self.api_key, verify=self.verify, timeout=self.timeout, cancel=cancel) as client:
            target = _redfish_target(client, self.node, self.system_id)
        cancel.raise_if_cancelled()
        eject = RedfishEjectJob(
            self.node, target.boot_bmc, target.password, trust=self.trust, confirm=self.confirm, timeouts=self.timeouts
        )
        facts = dict(eject.run(report.child(0.05, 0.95), cancel) or {})
        return {**facts, "system_id": self.system_id}
