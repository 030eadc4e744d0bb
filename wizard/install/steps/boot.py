"""Boot every node from the appliance ISO, the provider's way.

``machines`` gets the machines ready (vSphere VMs created or checked, MAAS machines allocated), ``media`` puts the
ISO where the nodes boot from (a datastore, or the wizard's ISO server for BMCs), ``boot`` boots each node from it
(or, for the ``manual`` provider, says what to do and waits for the node to answer), and ``eject`` takes the ISO
away after the install so a reboot never installs again. A provider without work in a step simply has no jobs
there.

MAAS machines boot by their power type: ``media`` reads each machine's power settings from MAAS (the route is
journaled without the BMC password) and serves the ISO when any machine has a Redfish BMC; ``boot`` boots those
through the BMC with the credentials MAAS keeps (read again when the job runs, never stored) and shows MAAS's
instruction for the others, then waits for them to answer; ``eject`` ejects the Redfish ones.

The ISO server's port and token are journaled, so a resumed run serves the URLs the BMCs already hold; a node that
finished installing is never booted again.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wizard.appliance.seed import (
    NodeSeed,
    build_seed_iso,
    hash_password,
    public_key_line,
    render_user_data,
    seed_for_node,
    wizard_key,
)
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext
from wizard.core.journal import JOB_DONE
from wizard.core.progress import Reporter
from wizard.core.project import ConfigureMode, MaasSettings, Node, Project, ProviderType, SecretRef
from wizard.core.trust import TrustStore
from wizard.install.steps.nodes import DEFAULT_PASSWORD, Pacing, session_folder
from wizard.install.steps.providers import bmc_accesses, maas_access, vsphere_access
from wizard.providers.manual import ManualBootJob, ManualPacing
from wizard.providers.redfish.jobs import SEED_SUFFIX
from wizard.providers.redfish.session import parse_address

if TYPE_CHECKING:
    from wizard.providers.isoserver import IsoServer

log = logging.getLogger(__name__)


def _iso_name(ctx: StepContext) -> str:
    iso = ctx.project.files.iso
    return iso.path.name if iso else "the appliance ISO"


class MachinesStep(Step):
    id = "machines"
    title = "Prepare the machines"
    weight = 0.5

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        project = ctx.project
        provider = project.provider
        if provider.type is ProviderType.MAAS and provider.maas is not None:
            from wizard.providers.maas import AllocateMachinesJob

            access = maas_access(ctx, provider.maas)
            job = AllocateMachinesJob(
                access.url,
                access.api_key,
                access.verify(),
                refs=[n.maas for n in project.nodes],
                comment=f"Palette management appliance {project.name!r}, allocated by palette-wizard",
                agent_name=f"palette-wizard/{project.name}",
            )
            job.id = f"{self.id}/maas"
            return [job]
        if provider.type is ProviderType.VSPHERE and provider.vsphere is not None:
            from wizard.providers.vsphere.checks import vm_name_for
            from wizard.providers.vsphere.jobs import PrepareVmJob

            vs = vsphere_access(ctx, provider.vsphere)
            jobs: list[Job] = []
            for i, node in enumerate(project.nodes):
                prepare = PrepareVmJob(
                    *vs.args(), node=node.name, vm_name=vm_name_for(project, node), index=i, scheme=vs.scheme
                )
                prepare.id = f"{self.id}/{node.name}"
                jobs.append(prepare)
            self.parallel = max(1, len(jobs))
            return jobs
        return []


def _verified_sha256(ctx: StepContext) -> str:
    record = ctx.journal.job("verify/files.iso")
    if not record or record.get("status") != JOB_DONE:
        raise WizardError(
            "ISO not verified",
            "the ISO's checksum is not recorded yet",
            remediation="run the Verify files step first (run without --until, or resume the session)",
        )
    return str((record.get("result") or {}).get("sha256", ""))


def _fact(ctx: StepContext, job_id: str, key: str) -> str:
    record = ctx.journal.job(job_id)
    value = ((record or {}).get("result") or {}).get(key) if record and record.get("status") == JOB_DONE else None
    if not value:
        raise WizardError(
            "Earlier step not finished",
            f"{job_id} has not recorded its {key}",
            remediation="run the earlier steps first (resume the session)",
        )
    return str(value)


def _done_result(ctx: StepContext, job_id: str) -> dict[str, Any]:
    record = ctx.journal.job(job_id)
    if not record or record.get("status") != JOB_DONE:
        raise WizardError(
            "Earlier step not finished",
            f"{job_id} has not finished",
            remediation="run the earlier steps first (resume the session)",
        )
    return dict(record.get("result") or {})


def _maas_machines(ctx: StepContext) -> dict[str, str]:
    """Node name → MAAS system id, as the machines step allocated them."""
    allocated = _done_result(ctx, "machines/maas").get("machines") or {}
    out: dict[str, str] = {}
    for node in ctx.project.nodes:
        system_id = allocated.get(node.maas)
        if not system_id:
            raise WizardError(
                "Machine not allocated",
                f"the machines step did not allocate a MAAS machine for {node.name} ({node.maas})",
                remediation="run the machines step again (resume the session)",
            )
        out[node.name] = str(system_id)
    return out


ISO_SERVER = "iso-server"
#: The journal fact that lets a resumed run serve the ISO at the very URLs the BMCs already hold.
ISO_SERVER_FACT = "iso-server"


def _external_iso(ctx: StepContext) -> str:
    """The operator's own ISO URL for the BMCs, when the ISO is hosted elsewhere ("" means the wizard serves it)."""
    redfish = ctx.project.provider.redfish
    return redfish.iso_url if redfish is not None else ""


def _token_ref(ctx: StepContext) -> SecretRef:
    return SecretRef(f"session-{ctx.journal.path.stem}-iso-token")


def _previous_server(ctx: StepContext, bind: str) -> tuple[int, str | None]:
    """The port and token of the last run's ISO server on ``bind`` (0 and None when there was none).

    The token is a capability URL for the appliance ISO and the seed ISOs (which carry a password hash): it keeps
    other hosts on the BMC network from fetching or enumerating the files while they are served. Like every secret it
    lives in the OS keyring, never in the journal, so a resumed run can serve the same URLs. Without a persistent
    keyring it is gone after the process, and the boot step re-inserts the new URL into nodes still installing.
    """
    fact = ctx.journal.fact(ISO_SERVER_FACT)
    if not isinstance(fact, dict) or fact.get("bind") != bind:
        return 0, None
    try:
        port = int(fact.get("port", 0))
    except ValueError:
        return 0, None
    return port, ctx.secrets.get(_token_ref(ctx))


def iso_server(ctx: StepContext, bmc_hosts: list[str] | None = None) -> IsoServer:
    """The run's ISO server, started on first use and stopped by the engine when the run ends (the BMCs read the
    ISO for as long as the nodes install, so it outlives the boot step).

    A resumed run listens on the last run's port with its token when it can, so the URL a BMC still streams from
    keeps serving; when that port is taken the boot step re-inserts the new URL into nodes still installing.
    ``bmc_hosts`` are the BMCs to route to when choosing the address (default: the project's BMCs).
    """
    from wizard.providers.isoserver import IsoServer, choose_bind_address

    def start() -> IsoServer:
        redfish = ctx.project.provider.redfish
        bind = redfish.iso_server_bind if redfish is not None else ""
        if not bind:
            hosts = bmc_hosts
            if hosts is None:
                hosts = [parse_address(n.bmc.address).host for n in ctx.project.nodes if n.bmc is not None]
            bind = choose_bind_address(hosts)
        port = redfish.iso_server_port if redfish is not None else 0
        previous_port, token = _previous_server(ctx, bind)
        server: IsoServer | None = None
        if previous_port and port in (0, previous_port):
            try:
                server = IsoServer(bind, previous_port, token=token)
            except WizardError as exc:
                log.warning("ISO server: port %d of the last run is taken (%s); BMCs get new URLs", previous_port, exc)
        if server is None:
            server = IsoServer(bind, port, token=token)
        ctx.secrets.set(_token_ref(ctx), server.token)
        ctx.journal.set_fact(ISO_SERVER_FACT, {"bind": bind, "port": server.port, "scheme": server.scheme})
        return server.start()

    return ctx.resources.get(ISO_SERVER, start, lambda server: server.stop())


def _installed(ctx: StepContext, node: str) -> bool:
    record = ctx.journal.job(f"install/{node}")
    return record is not None and record.get("status") == JOB_DONE


class _ServedBootJob(Job):
    """A boot job whose identity includes the URL it gives the BMC: when a resumed run serves the ISO elsewhere (the
    last port was taken), the node still installing is booted with the new URL."""

    def __init__(self, inner: Job, url: str) -> None:
        self.inner = inner
        self.url = url
        self.id = inner.id
        self.name = inner.name
        self.node = inner.node
        self.weight = inner.weight

    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.inner.fingerprint()}\n{self.url}".encode()).hexdigest()[:16]

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        return self.inner.run(report, cancel)


class ServeIsoJob(Job):
    """Starts the ISO server the BMCs download from and says where it listens, so the operator can check that the
    BMC network reaches it."""

    weight = 0.2
    rerun = True  # a new run needs a running server

    def __init__(self, server: Callable[[], IsoServer], iso: Path, nodes: list[str], *, step: str = "media") -> None:
        self.server = server
        self.iso = iso
        self.nodes = nodes
        self.id = f"{step}/iso-server"
        self.name = "ISO server"

    def fingerprint(self) -> str:
        return f"{self.iso}|{self.nodes}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        if not self.iso.is_file():
            raise WizardError("ISO missing", f"{self.iso} does not exist", remediation="pick the ISO again")
        server = self.server()
        report.finish(f"serving {self.iso.name} at {server.url_base} for {len(self.nodes)} BMC(s)")
        return {"url_base": server.url_base}


class MaasMediaJob(Job):
    """Reads how each MAAS machine boots (its power type and BMC) and, when any boots through Redfish, starts the
    ISO server its BMC downloads from. Facts: ``routes`` (node → route, never a BMC password), ``url_base``."""

    weight = 0.3
    rerun = True  # MAAS's power settings may change between runs, and a resumed run needs its ISO server

    def __init__(
        self,
        url: str,
        api_key: str,
        verify: ssl.SSLContext | bool,
        *,
        machines: Mapping[str, str],
        iso_hint: str,
        server: Callable[[list[str]], IsoServer] | None,
        step: str = "media",
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.verify = verify
        self.machines = dict(machines)
        self.iso_hint = iso_hint
        self.server = server
        self.id = f"{step}/maas"
        self.name = "Boot routes"

    def fingerprint(self) -> str:
        return f"{self.url}|{sorted(self.machines.items())}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        from wizard.providers.maas import MaasClient, RedfishTarget, read_boot_routes, route_facts

        report.update(0.05, f"Reading the power settings of {len(self.machines)} machine(s) from MAAS")
        with MaasClient(self.url, self.api_key, verify=self.verify) as client:
            routes = read_boot_routes(client, self.machines, iso_hint=self.iso_hint, cancel=cancel)
        facts: dict[str, Any] = {"routes": {node: route_facts(r) for node, r in routes.items()}}
        bmcs = [parse_address(r.boot_bmc.address).host for r in routes.values() if isinstance(r, RedfishTarget)]
        manual = len(routes) - len(bmcs)
        summary = f"{len(bmcs)} through Redfish, {manual} by hand"
        if bmcs and self.server is not None:
            server = self.server(bmcs)
            facts["url_base"] = server.url_base
            summary += f"; serving the ISO at {server.url_base}"
        report.finish(summary)
        return facts


SEED_FOLDER = "seeds"


def seeding(ctx: StepContext) -> bool:
    """Whether this run attaches a seed ISO to each node (``appliance.configure: seed``): the provider inserts it
    beside the ISO (MAAS machines through their Redfish BMC; for the others MAAS's instruction names it)."""
    return ctx.project.appliance.configure is ConfigureMode.SEED


def seed_name(node: str) -> str:
    return f"{node}{SEED_SUFFIX}"


class BuildSeedJob(Job):
    """Writes one node's NoCloud seed ISO (host name, address, DNS, NTP, proxy, the operator's password as a bcrypt
    hash, the wizard's public key) into the session folder. Facts: ``path``, ``sha256``, ``size``."""

    weight = 0.2

    def __init__(
        self,
        project: Project,
        node: Node,
        password: str,
        public_key: str,
        folder: Path,
        *,
        step: str,
        hashed: Callable[[], str] | None = None,
    ) -> None:
        self.project = project
        self.node_settings = node
        self._password = password
        self._hashed = hashed or SharedHash(password)
        self.public_key = public_key
        self.path = folder / SEED_FOLDER / seed_name(node.name)
        self.id = f"{step}/seed/{node.name}"
        self.name = f"Seed ISO for {node.name}"
        self.node = node.name

    def _seed(self, password_hash: str) -> NodeSeed:
        return seed_for_node(self.project, self.node_settings, password_hash=password_hash, ssh_keys=[self.public_key])

    def fingerprint(self) -> str:
        # Everything the seed says, with the password as a digest (the hash itself is salted anew on every build).
        digest = hashlib.sha256(self._password.encode()).hexdigest()[:16]
        return hashlib.sha256(f"{render_user_data(self._seed(digest))}|{self.path}".encode()).hexdigest()[:16]

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        report.update(0.1, f"{self.node}: hashing the password and writing its seed ISO")
        build_seed_iso(self._seed(self._hashed()), self.path)
        data = self.path.read_bytes()
        report.finish(f"{self.node}: seed ISO {self.path.name} ({len(data)} bytes)")
        return {"path": str(self.path), "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


class SeedUploadJob(Job):
    """Builds a node's seed ISO, then uploads it beside the appliance ISO (vSphere) with the provider's upload job.
    Facts: the upload's (``datastore_path`` …) plus ``seed``."""

    weight = 0.5

    def __init__(self, build: BuildSeedJob, upload: Callable[[Path, str], Job]) -> None:
        self.build = build
        self.upload = upload
        self.id = build.id
        self.name = build.name
        self.node = build.node

    def fingerprint(self) -> str:
        return self.build.fingerprint()

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        built = dict(self.build.run(report.child(0.0, 0.3), cancel) or {})
        cancel.raise_if_cancelled()
        facts = dict(self.upload(Path(built["path"]), str(built["sha256"])).run(report.child(0.3, 0.7), cancel) or {})
        facts["seed"] = built
        report.finish(f"{self.node}: seed ISO at {facts.get('datastore_path', '?')}")
        return facts


def seed_jobs(ctx: StepContext, *, step: str) -> list[BuildSeedJob]:
    """One seed build per node, with the operator's password (the default one when the project sets none: the
    seed then still brings the host name, network and the wizard's key) and the wizard's own public key."""
    project = ctx.project
    ref = project.appliance.password
    password = ctx.secrets.require(ref, "appliance.password") if ref is not None else DEFAULT_PASSWORD
    public = public_key_line(wizard_key(ctx.paths.config), f"palette-wizard@{project.name}")
    folder = session_folder(ctx)
    hashed = SharedHash(password)
    return [BuildSeedJob(project, node, password, public, folder, step=step, hashed=hashed) for node in project.nodes]


class SharedHash:
    """One bcrypt hash of the password for every node's seed, made once by whichever build asks first. bcrypt is
    slow on purpose (~0.2 s of CPU a hash); the nodes share the operator's password anyway, so a shared salt tells
    a reader of two seeds nothing the project does not already say."""

    def __init__(self, password: str) -> None:
        self._password = password
        self._lock = threading.Lock()
        self._hash = ""

    def __call__(self) -> str:
        with self._lock:
            if not self._hash:
                self._hash = hash_password(self._password)
            return self._hash


def _seed_file(ctx: StepContext, node: str) -> Path | None:
    """The node's seed ISO as the media step built it, or None when this run attaches none."""
    if not seeding(ctx):
        return None
    record = ctx.journal.job(f"media/seed/{node}")
    if not record or record.get("status") != JOB_DONE:
        return None
    result = record.get("result") or {}
    built = result.get("seed", result)
    path = Path(str(built.get("path", "")))
    return path if path.is_file() else None


class MediaStep(Step):
    id = "media"
    title = "Provide the ISO"
    weight = 1.0

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        project = ctx.project
        provider = project.provider
        iso = project.files.iso
        if provider.type is ProviderType.VSPHERE and provider.vsphere is not None and iso is not None:
            from wizard.providers.vsphere.jobs import UploadIsoJob

            vs = vsphere_access(ctx, provider.vsphere)
            upload = UploadIsoJob(
                *vs.args(),
                local_path=iso.path,
                sha256=_verified_sha256(ctx),
                remote_name=iso.path.name,
                scheme=vs.scheme,
            )
            upload.id = f"{self.id}/iso"
            jobs: list[Job] = [upload]
            if seeding(ctx):
                from wizard.providers.vsphere.checks import vm_name_for

                for build in seed_jobs(ctx, step=self.id):
                    node = next(n for n in project.nodes if n.name == build.node)

                    def upload_seed(path: Path, sha256: str, node: Node = node) -> Job:
                        return UploadIsoJob(
                            *vs.args(),
                            local_path=path,
                            sha256=sha256,
                            remote_name=f"{vm_name_for(project, node)}{SEED_SUFFIX}",
                            node=node.name,
                            scheme=vs.scheme,
                        )

                    jobs.append(SeedUploadJob(build, upload_seed))
            return jobs
        if provider.type is ProviderType.REDFISH and iso is not None and not _external_iso(ctx):
            serving: list[Job] = [
                ServeIsoJob(lambda: iso_server(ctx), iso.path, [n.name for n in project.nodes], step=self.id)
            ]
            return serving + (list(seed_jobs(ctx, step=self.id)) if seeding(ctx) else [])
        if provider.type is ProviderType.MANUAL and seeding(ctx):
            return list(seed_jobs(ctx, step=self.id))
        if provider.type is ProviderType.MAAS and provider.maas is not None:
            access = maas_access(ctx, provider.maas)
            serve = iso is not None and not _external_iso(ctx)
            return [
                MaasMediaJob(
                    access.url,
                    access.api_key,
                    access.verify(),
                    machines=_maas_machines(ctx),
                    iso_hint=_external_iso(ctx) or (str(iso.path) if iso is not None else ""),
                    server=(lambda hosts: iso_server(ctx, hosts)) if serve else None,
                    step=self.id,
                ),
                *(seed_jobs(ctx, step=self.id) if seeding(ctx) else []),
            ]
        return []


class BootStep(Step):
    id = "boot"
    title = "Boot the nodes from the ISO"
    weight = 1.0

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        project = ctx.project
        if project.provider.type is ProviderType.MANUAL:
            jobs: list[Job] = [
                ManualBootJob(
                    node.name,
                    node.hostname,
                    node.ip,
                    ports=(node.ssh_port, node.localui_port),
                    iso_name=_iso_name(ctx),
                    pacing=self.pacing.manual,
                    step=self.id,
                    seed=str(_seed_file(ctx, node.name) or ""),
                )
                for node in project.nodes
            ]
            self.parallel = max(1, len(jobs))
            return jobs
        if project.provider.type is ProviderType.REDFISH:
            from wizard.providers.redfish.jobs import RedfishBootJob

            external = _external_iso(ctx)
            server = None if external else iso_server(ctx)
            iso = project.files.iso
            jobs = []
            for access in bmc_accesses(ctx):
                if _installed(ctx, access.node):
                    continue  # installed: it must never boot the ISO again, whatever URL is served now
                seed_url = ""
                if server is not None and iso is not None:
                    url = server.publish(iso.path, f"{access.node}-{iso.path.name}")
                    seed = _seed_file(ctx, access.node)
                    if seed is not None:  # the BMC reads the seed from the same server, by its own URL
                        seed_url = server.publish(seed, seed_name(access.node))
                else:
                    url = external
                boot_job = RedfishBootJob(
                    access.node,
                    access.bmc,
                    access.password,
                    url,
                    trust=access.trust,
                    confirm=access.confirm,
                    iso_server=server,
                    timeouts=self.pacing.redfish,
                    seed_url=seed_url,
                )
                boot_job.id = f"{self.id}/{access.node}"
                jobs.append(_ServedBootJob(boot_job, url))
            self.parallel = max(1, len(jobs))
            return jobs
        if project.provider.type is ProviderType.MAAS and project.provider.maas is not None:
            return self._maas_jobs(ctx, project.provider.maas)
        if project.provider.type is ProviderType.VSPHERE and project.provider.vsphere is not None:
            from wizard.providers.vsphere.checks import vm_name_for
            from wizard.providers.vsphere.jobs import AntiAffinityJob, BootVmJob

            vs = vsphere_access(ctx, project.provider.vsphere)
            iso_path = _fact(ctx, "media/iso", "datastore_path")
            jobs = []
            for node in project.nodes:
                seed_path = _fact(ctx, f"media/seed/{node.name}", "datastore_path") if seeding(ctx) else ""
                boot = BootVmJob(
                    *vs.args(),
                    node=node.name,
                    vm_name=vm_name_for(project, node),
                    iso_datastore_path=iso_path,
                    seed_datastore_path=seed_path,
                    scheme=vs.scheme,
                )
                boot.id = f"{self.id}/{node.name}"
                jobs.append(boot)
            if len(project.nodes) > 1:
                rule = AntiAffinityJob(
                    *vs.args(),
                    vm_names=[vm_name_for(project, n) for n in project.nodes],
                    rule_name=f"{project.name}-spread",
                    scheme=vs.scheme,
                )
                rule.id = f"{self.id}/anti-affinity"
                jobs.append(rule)
            self.parallel = max(1, len(jobs))
            return jobs
        return []

    def _maas_jobs(self, ctx: StepContext, settings: MaasSettings) -> list[Job]:
        """Redfish routes boot through the BMC MAAS knows; the others get MAAS's instruction and are watched."""
        from wizard.providers.maas import MaasRedfishBootJob

        routes: dict[str, Any] = _done_result(ctx, "media/maas").get("routes") or {}
        machines = _maas_machines(ctx)
        access = maas_access(ctx, settings)
        iso = ctx.project.files.iso
        external = _external_iso(ctx)
        redfish = [n for n in ctx.project.nodes if (routes.get(n.name) or {}).get("route") == "redfish"]
        server = None
        if redfish and not external:
            server = iso_server(ctx, [parse_address(routes[n.name]["bmc"]).host for n in redfish])
        trust = TrustStore(ctx.paths.config)
        verify = access.verify()
        jobs: list[Job] = []
        for node in ctx.project.nodes:
            route = routes.get(node.name) or {}
            if route.get("route") == "redfish":
                if _installed(ctx, node.name):
                    continue  # installed: it must never boot the ISO again, whatever URL is served now
                url = external
                seed_url = ""
                if server is not None and iso is not None:
                    url = server.publish(iso.path, f"{node.name}-{iso.path.name}")
                    seed = _seed_file(ctx, node.name)
                    if seed is not None:  # the BMC reads the seed from the same server, by its own URL
                        seed_url = server.publish(seed, seed_name(node.name))
                jobs.append(
                    MaasRedfishBootJob(
                        node.name,
                        access.url,
                        access.api_key,
                        verify,
                        system_id=machines[node.name],
                        iso_url=url,
                        trust=trust,
                        confirm=ctx.confirm,
                        iso_server=server,
                        timeouts=self.pacing.redfish,
                        step=self.id,
                        seed_url=seed_url,
                    )
                )
            else:
                jobs.append(
                    ManualBootJob(
                        node.name,
                        node.hostname,
                        node.ip,
                        ports=(node.ssh_port, node.localui_port),
                        iso_name=_iso_name(ctx),
                        pacing=self.pacing.manual,
                        step=self.id,
                        how=str(route.get("instruction") or ""),
                        seed=str(_seed_file(ctx, node.name) or ""),
                    )
                )
        self.parallel = max(1, len(jobs))
        return jobs


def eject_jobs(ctx: StepContext, pacing: Pacing, *, step: str = "eject") -> list[Job]:
    """The provider's eject job for each node it booted (each with ``.node``): the install monitor runs a node's as
    soon as its installer finished, and the eject step runs them all again to confirm (they are idempotent)."""
    project = ctx.project
    if project.provider.type is ProviderType.REDFISH:
        from wizard.providers.redfish.jobs import RedfishEjectJob

        ejects: list[Job] = []
        for access in bmc_accesses(ctx):
            eject_job = RedfishEjectJob(
                access.node,
                access.bmc,
                access.password,
                trust=access.trust,
                confirm=access.confirm,
                timeouts=pacing.redfish,
            )
            eject_job.id = f"{step}/{access.node}"
            ejects.append(eject_job)
        return ejects
    if project.provider.type is ProviderType.MAAS and project.provider.maas is not None:
        from wizard.providers.maas import MaasRedfishEjectJob

        routes: dict[str, Any] = _done_result(ctx, "media/maas").get("routes") or {}
        maas = maas_access(ctx, project.provider.maas)
        verify = maas.verify()
        trust = TrustStore(ctx.paths.config)
        return [
            MaasRedfishEjectJob(
                node.name,
                maas.url,
                maas.api_key,
                verify,
                system_id=str(routes[node.name]["system_id"]),
                trust=trust,
                confirm=ctx.confirm,
                timeouts=pacing.redfish,
                step=step,
            )
            for node in project.nodes
            # nodes booted by hand had their ISO attached by the operator, who detaches it the same way
            if (routes.get(node.name) or {}).get("route") == "redfish"
        ]
    if project.provider.type is ProviderType.VSPHERE and project.provider.vsphere is not None:
        from wizard.providers.vsphere.checks import vm_name_for
        from wizard.providers.vsphere.jobs import EjectVmJob

        vs = vsphere_access(ctx, project.provider.vsphere)
        jobs: list[Job] = []
        for node in project.nodes:
            eject = EjectVmJob(*vs.args(), node=node.name, vm_name=vm_name_for(project, node), scheme=vs.scheme)
            eject.id = f"{step}/{node.name}"
            jobs.append(eject)
        return jobs
    return []


class EjectStep(Step):
    """Confirms every node's media is ejected: the install monitor ejected each node's as soon as its installer
    finished; this runs the same idempotent jobs once more (and catches an eject that failed then)."""

    id = "eject"
    title = "Eject the ISO"
    weight = 0.3

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        jobs = eject_jobs(ctx, self.pacing, step=self.id)
        self.parallel = max(1, len(jobs))
        return jobs


__all__ = [
    "ISO_SERVER_FACT",
    "BootStep",
    "BuildSeedJob",
    "EjectStep",
    "MaasMediaJob",
    "MachinesStep",
    "ManualPacing",
    "MediaStep",
    "eject_jobs",
    "seeding",
]
