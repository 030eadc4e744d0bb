"""Provide the ISO: put the boot ISO where the nodes boot from, with each node's seed ISO.

``media`` makes the ISO the boot strategy calls for (``appliance.boot``): with ``unattended`` (the default where the
project names the ISO) the unattended copy of the verified ISO, whose GRUB default is the automatic installer
(:mod:`wizard.appliance.unattended`; the copy is made once per source and reused); with ``keys`` or ``console`` the
ISO as downloaded. Then, by provider: the vSphere datastore upload, the wizard's ISO server for BMCs (Redfish, and
MAAS machines with a Redfish BMC), or nothing but the seeds for ``manual`` (whose instruction names the file).

MAAS machines boot by their power type: ``media`` reads each machine's power settings from MAAS (the route is
journaled without the BMC password) and serves the ISO when any machine has a Redfish BMC.

The ISO server's port and token are journaled, so a resumed run serves the URLs the BMCs already hold.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wizard.appliance.media import CONFIG_PATH, read_member
from wizard.appliance.seed import (
    NodeSeed,
    build_seed_iso,
    hash_password,
    iso_user_data,
    public_key_line,
    render_user_data,
    seed_for_node,
    wizard_key,
)
from wizard.appliance.unattended import DeriveUnattendedJob, derive_verified, derived_name
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext
from wizard.core.journal import JOB_DONE
from wizard.core.progress import Reporter
from wizard.core.project import BootMode, ConfigureMode, Node, Project, ProviderType, SecretRef
from wizard.install.steps.nodes import DEFAULT_PASSWORD, Pacing, session_folder
from wizard.install.steps.providers import maas_access, vsphere_access
from wizard.providers.redfish.jobs import SEED_SUFFIX
from wizard.providers.redfish.session import parse_address

if TYPE_CHECKING:
    from wizard.providers.isoserver import IsoServer

log = logging.getLogger(__name__)

UNATTENDED_JOB = "media/unattended"


def _verified_sha256(ctx: StepContext) -> str:
    record = ctx.journal.job("verify/files.iso")
    if not record or record.get("status") != JOB_DONE:
        raise WizardError(
            "ISO not verified",
            "the ISO's checksum is not recorded yet",
            remediation="run the Verify files step first (run without --until, or resume the session)",
        )
    return str((record.get("result") or {}).get("sha256", ""))


def step_fact(ctx: StepContext, job_id: str, key: str) -> str:
    record = ctx.journal.job(job_id)
    value = ((record or {}).get("result") or {}).get(key) if record and record.get("status") == JOB_DONE else None
    if not value:
        raise WizardError(
            "Earlier step not finished",
            f"{job_id} has not recorded its {key}",
            remediation="run the earlier steps first (resume the session)",
        )
    return str(value)


def done_result(ctx: StepContext, job_id: str) -> dict[str, Any]:
    record = ctx.journal.job(job_id)
    if not record or record.get("status") != JOB_DONE:
        raise WizardError(
            "Earlier step not finished",
            f"{job_id} has not finished",
            remediation="run the earlier steps first (resume the session)",
        )
    return dict(record.get("result") or {})


def maas_machines(ctx: StepContext) -> dict[str, str]:
    """Node name → MAAS system id, as the machines step allocated them."""
    allocated = done_result(ctx, "machines/maas").get("machines") or {}
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


def external_iso(ctx: StepContext) -> str:
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


def identity_seed(ctx: StepContext) -> bool:
    """Whether each node's seed configures it (host name, address, account, the wizard's key):
    ``appliance.configure: seed``."""
    return ctx.project.appliance.configure is ConfigureMode.SEED


def seeding(ctx: StepContext) -> bool:
    """Whether this run attaches a seed ISO to each node: a configuring one (``appliance.configure: seed``), or, for a
    node configured after the install that boots the automatic installer (``appliance.boot: unattended`` or
    ``keys``), one with only the post-install action, so the installer reboots instead of following the ISO's own
    ``poweroff``. The provider inserts it beside the ISO (MAAS machines through their Redfish BMC; for the others
    MAAS's instruction names it)."""
    return identity_seed(ctx) or ctx.project.boot_mode() in (BootMode.UNATTENDED, BootMode.KEYS)


def seed_name(node: str) -> str:
    return f"{node}{SEED_SUFFIX}"


class BuildSeedJob(Job):
    """Writes one node's NoCloud seed ISO (host name, address, DNS, NTP, proxy, the operator's password as a bcrypt
    hash, the wizard's public key, over the ISO's own ``config.yaml``: :func:`wizard.appliance.seed.user_data`) into
    the session folder. Facts: ``path``, ``sha256``, ``size``."""

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
        base: dict[str, Any] | None = None,
        identity: bool = True,
        hashed: Callable[[], str] | None = None,
    ) -> None:
        self.project = project
        self._hashed = hashed or SharedHash(password)
        self.base = dict(base or {})
        self.identity = identity
        self.node_settings = node
        self._password = password
        self.public_key = public_key
        self.path = folder / SEED_FOLDER / seed_name(node.name)
        self.id = f"{step}/seed/{node.name}"
        self.name = f"Seed ISO for {node.name}"
        self.node = node.name

    def _seed(self, password_hash: str) -> NodeSeed:
        return seed_for_node(
            self.project,
            self.node_settings,
            password_hash=password_hash,
            ssh_keys=[self.public_key],
            base=self.base,
            identity=self.identity,
        )

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
    base = iso_user_data(read_member(project.files.iso.path, CONFIG_PATH)) if project.files.iso is not None else {}
    identity = identity_seed(ctx)
    hashed = SharedHash(password)
    return [
        BuildSeedJob(project, node, password, public, folder, step=step, base=base, identity=identity, hashed=hashed)
        for node in project.nodes
    ]


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


def seed_file(ctx: StepContext, node: str) -> Path | None:
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


@dataclass(frozen=True)
class BootIso:
    """The ISO the nodes boot from, as ``appliance.boot`` picks it: the unattended copy of the verified source, or
    the source itself. Plain values; :meth:`resolve` makes the copy (once, shared by every job that asks)."""

    source: Path
    source_sha256: str
    signature_verified: bool
    unattended: bool
    cache: Path

    @property
    def name(self) -> str:
        """The file name the nodes see (on a datastore, in an ISO server's URL)."""
        return derived_name(self.source, self.source_sha256) if self.unattended else self.source.name

    @property
    def hint(self) -> str:
        """The file an operator attaches by hand: the copy's full path (made by the media step) or the source's."""
        return str(self.cache / self.name) if self.unattended else str(self.source)

    def resolve(self, report: Reporter | None = None, cancel: CancelToken | None = None) -> tuple[Path, str]:
        """The boot ISO's path and sha256 (deriving the unattended copy when it is not made yet)."""
        if not self.unattended:
            return self.source, self.source_sha256
        derived = derive_verified(
            self.source,
            self.source_sha256,
            signature_verified=self.signature_verified,
            cache=self.cache,
            report=report,
            cancel=cancel,
        )
        return derived.path, derived.sha256


def media_cache(ctx: StepContext) -> Path:
    """Where unattended copies are kept (by their source's sha256), shared by every session of this user."""
    return ctx.paths.cache / "media"


def boot_iso(ctx: StepContext) -> BootIso | None:
    """The boot ISO of this run (None when the project names no ISO)."""
    iso = ctx.project.files.iso
    if iso is None:
        return None
    record = ctx.journal.job("verify/files.iso")
    verified = dict(record.get("result") or {}) if record and record.get("status") == JOB_DONE else {}
    return BootIso(
        source=iso.path,
        source_sha256=_verified_sha256(ctx),
        signature_verified=bool(verified.get("signature_verified")),
        unattended=ctx.project.boot_mode() is BootMode.UNATTENDED,
        cache=media_cache(ctx),
    )


def boot_iso_path(ctx: StepContext) -> Path | None:
    """The file the nodes boot from, once the media step made it (the source for ``keys`` and ``console``)."""
    iso = ctx.project.files.iso
    if iso is None:
        return None
    if ctx.project.boot_mode() is not BootMode.UNATTENDED:
        return iso.path
    return Path(step_fact(ctx, UNATTENDED_JOB, "path"))


class MediaStep(Step):
    id = "media"
    title = "Provide the ISO"
    weight = 1.0
    # The unattended copy of an ISO of several GiB, then its upload to a datastore or the ISO server for BMCs.
    expected = 300.0

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        project = ctx.project
        provider = project.provider
        boot = boot_iso(ctx)
        jobs: list[Job] = []
        if boot is not None and boot.unattended:
            jobs.append(
                DeriveUnattendedJob(
                    boot.source,
                    boot.source_sha256,
                    signature_verified=boot.signature_verified,
                    cache=boot.cache,
                    step=self.id,
                )
            )
        if provider.type is ProviderType.VSPHERE and provider.vsphere is not None and boot is not None:
            from wizard.providers.vsphere.jobs import UploadIsoJob

            vs = vsphere_access(ctx, provider.vsphere)
            upload = UploadIsoJob(
                *vs.args(),
                local_path=boot.source,
                sha256=boot.source_sha256,
                remote_name=boot.name,
                scheme=vs.scheme,
                # The copy is made by the job above; asking for it here waits for it (and reuses it).
                resolve=boot.resolve if boot.unattended else None,
            )
            upload.id = f"{self.id}/iso"
            jobs.append(upload)
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
        if provider.type is ProviderType.REDFISH and boot is not None and not external_iso(ctx):
            jobs.append(
                ServeIsoJob(lambda: iso_server(ctx), boot.source, [n.name for n in project.nodes], step=self.id)
            )
            return jobs + (list(seed_jobs(ctx, step=self.id)) if seeding(ctx) else [])
        if provider.type is ProviderType.MANUAL:
            return jobs + (list(seed_jobs(ctx, step=self.id)) if seeding(ctx) else [])
        if provider.type is ProviderType.MAAS and provider.maas is not None:
            access = maas_access(ctx, provider.maas)
            serve = boot is not None and not external_iso(ctx)
            return [
                *jobs,
                MaasMediaJob(
                    access.url,
                    access.api_key,
                    access.verify(),
                    machines=maas_machines(ctx),
                    iso_hint=external_iso(ctx) or (boot.hint if boot is not None else ""),
                    server=(lambda hosts: iso_server(ctx, hosts)) if serve else None,
                    step=self.id,
                ),
                *(seed_jobs(ctx, step=self.id) if seeding(ctx) else []),
            ]
        return jobs
