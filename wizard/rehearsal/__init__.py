"""A whole install rehearsed against simulated appliance nodes on this machine: ``palette-wizard run --rehearse``.

:class:`Rehearsal` starts a lab of nodes that are not installed yet and Palette's system console at the VIP (it
answers once the lab's cluster runs), builds the files an operator would download (a small UEFI-bootable appliance
ISO, a content bundle and two pack bundles signed with a key made for the occasion), writes a project file that
points at the lab's nodes and console and stores its secrets in memory — the activation key among them, issued by the
lab for this console's Product Setup ID, so the run ends with "Palette activated, packs uploaded". Then the very
engine of ``run PROJECT`` runs on it; the rehearsal only plays the operator's part of the ``manual`` provider — when
the boot step starts it inserts the ISO into every node and powers them on.

``provider`` picks who powers the nodes on. ``manual`` (the default): the rehearsal plays the operator. ``redfish``:
each node gets a BMC in sushy-tools' Redfish emulator (the optional ``rehearsal`` extra) and the wizard's bare-metal
provider serves the ISO, inserts it as virtual media and boots each node through its BMC. ``vsphere``: a vCenter
simulator (govmomi's ``vcsim``, on PATH or given) and the wizard's vSphere provider creates the VMs, uploads the ISO
and boots them. In both, a lab node starts only when its control plane says so (:mod:`wizard.lab.controlplane`),
so the rehearsal goes through the provider's real protocol. A missing emulator or simulator is a clear error naming
what to install.

Everything lives in one folder (``<state>/rehearsal``) with its own journal, logs and trust store, so a rehearsal
never touches the operator's sessions, keyring or pinned fingerprints. The project pins every node's SSH host key
and TLS certificate, so nothing is asked; the system console's certificate, which no project can know before the
cluster exists, is pinned on first contact because the leader, asked over its pinned SSH session, sees the same one
at the VIP. ``console_intercepted`` makes the VIP present another certificate to this machine than the leader sees
there (an interceptor on the way): the run must then refuse it. ``speed`` scales the lab's clock-driven durations
(a 15-minute install takes 15/speed minutes) and the steps' polling with it.

``lab`` carries the operator's ``--lab`` knobs (:mod:`wizard.lab.knobs`): transient 5xx answers on every lab HTTP
service, which plausible appliance the lab plays (:mod:`wizard.lab.variants`), and the nodes' and console's fault
knobs.

``netns=True`` (root on Linux) puts each node in its own network namespace at its own address in a private subnet,
listening on the appliance's real ports, with the cluster's VIP added to the leader's namespace once the cluster
runs (:mod:`wizard.lab.netns`): the wizard then reaches the nodes through a real network path, not loopback.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import keyring.backends.fail
import yaml

from wizard.appliance.monitor import Budgets, PollSettings
from wizard.appliance.versions import Version
from wizard.core.http import DEFAULT_RETRY
from wizard.core.jobs import Step
from wizard.core.paths import AppPaths
from wizard.core.progress import TaskStatus
from wizard.core.project import SecretRef
from wizard.core.runner import Event, JobFinished, StepStarted
from wizard.core.secrets import SecretStore
from wizard.install.steps import pipeline
from wizard.install.steps.nodes import Pacing
from wizard.install.steps.preflight import PreflightSettings
from wizard.lab import cluster as lab_cluster
from wizard.lab import kubepki
from wizard.lab.artifacts import (
    INTERACTIVE_DEFAULT,
    appliance_iso,
    content_bundle,
    make_key,
    operator_certificate,
    random_file,
    sign_file,
)
from wizard.lab.bootmenu import MEDIA_CHOICES, MENU_TIMEOUT
from wizard.lab.certs import create_node_certificate, load_node_certificate, load_or_create_node_certificate
from wizard.lab.console import DEFAULT_SYNC_DURATION, SystemConsoleServer, SystemConsoleState
from wizard.lab.consolecerts import ServedCertificate
from wizard.lab.controlplane import (
    RedfishWatcher,
    VSphereWatcher,
    Watcher,
    datastore_fetcher,
    datastore_reader,
    datastore_writer,
)
from wizard.lab.httpfaults import HttpFaults
from wizard.lab.keep import lab_state, read_state, write_state
from wizard.lab.knobs import NONE as NO_KNOBS
from wizard.lab.knobs import LabKnobError, LabKnobs, parse_knobs
from wizard.lab.kubeapi import KUBE_API_PORT, SOUND_STORAGE, KubeAPIServer, cluster_pods, tls_secret
from wizard.lab.lab import Lab, LabNode
from wizard.lab.node import CONFIGURE_SECONDS, DEFAULT_CLUSTER_TIMELINE, DEFAULT_UPGRADE_TIMELINE
from wizard.lab.ports import free_port
from wizard.lab.registry import pack_identity
from wizard.lab.variants import Variant
from wizard.lab.versions import ApplianceProfile, next_release, profile_from_knobs
from wizard.providers.manual import ManualPacing

log = logging.getLogger(__name__)

BANNER = "REHEARSAL — simulated appliance nodes on this machine, nothing real is touched"
PROJECT_NAME = "palette-rehearsal"
VIP = "127.0.10.10"
NETNS_VIP_HOST = 10  # with namespaces the VIP is this host number of the lab's subnet (10.213.0.10)
CONSOLE_PORT = 443  # the system console's port on a real install, used where nothing else shares the VIP
NODE_PASSWORD_KEY = "rehearsal-node-password"  # noqa: S105 - a keyring name, not a password
OCI_PASSWORD_KEY = "rehearsal-oci-registry-password"  # noqa: S105 - a keyring name, not a password
CONSOLE_PASSWORD_KEY = "rehearsal-console-password"  # noqa: S105 - a keyring name, not a password
ACTIVATION_KEY_REF = "rehearsal-activation-key"
CONSOLE_EMAIL = "admin@rehearsal.example"
CONSOLE_DOMAIN = "palette.rehearsal.example"  # the root domain the rehearsal's operator certificate names
BUNDLE_SIZE = 4 * 1024 * 1024
PACK_BUNDLES = (("ubuntu-22.04.5.zst", 1024 * 1024), ("pxk-e-1.30.6.zst", 2 * 1024 * 1024))
BMC_PASSWORD_KEY = "rehearsal-bmc-password"  # noqa: S105 - a keyring name, not a password
VCENTER_PASSWORD_KEY = "rehearsal-vcenter-password"  # noqa: S105 - a keyring name, not a password
SPARE_BMCS = 2  # Systems the Redfish emulator holds for machines racked later (add-node)
PROVIDERS = ("manual", "redfish", "vsphere")
#: Knobs that say which appliance the lab is: a kept lab keeps them.
KEPT_KNOBS = frozenset(
    {
        "version",
        "edition",
        "variant",
        "bonded",
        "console-intercepted",
        "console-secret",
        "upgrade-to",
        "seed",
        "console-certificate",
        "media",
        "grub-timeout",
    }
)
Provider = Literal["manual", "redfish", "vsphere"]
WATCH_INTERVAL = 0.1
ISO_NAME = "palette-edge-installer.iso"
PACK_IMPORT_SECONDS = 60.0  # appliance seconds the registry takes to import an uploaded pack
#: A node's management network as a data centre cables it: VLAN 100 on an LACP bond of two NICs.
BONDED_NETWORK = {
    "management": "bond0.100",
    "bonds": [
        {"name": "bond0", "members": ["eth0", "eth1"], "mode": "802.3ad", "hash_policy": "layer3+4",
         "lacp_rate": "fast", "mii": 100},
    ],
    "vlans": [{"parent": "bond0", "id": 100, "addressing": "static"}],
}  # fmt: skip


def _node_address() -> str:
    """127.0.10.1 where all of 127/8 is loopback (Linux, Windows): the preflight probes of the nodes' address then
    see only the lab. Elsewhere (macOS has just 127.0.0.1) the nodes share 127.0.0.1."""
    try:
        with socket.socket() as s:
            s.bind(("127.0.10.1", 0))
        return "127.0.10.1"
    except OSError:
        return "127.0.0.1"


def pacing_for(speed: float) -> Pacing:
    """The steps' polling and waits, scaled like the lab's clock (never below what a loaded CI machine needs):
    every poll at 10 s of appliance time, between the real defaults (5 s for the install monitor and links, 10 s
    for content, 15 s for the cluster), so a rehearsal notices a change about as soon, relative to the work, as a
    real run does."""
    interval = min(5.0, max(0.1, 10.0 / speed))
    return Pacing(
        monitor=PollSettings(interval=interval, connect_timeout=5.0, command_timeout=15.0),
        manual=ManualPacing(
            interval=interval, connect_timeout=2.0, remind_every=300 / speed, timeout=max(120.0, 3600 / speed)
        ),
        # The hard limit scaled too (a real install gets 3 h): a node that never comes up fails its job in minutes.
        budgets=Budgets(
            boot=600 / speed,
            install=2400 / speed,
            reboot=600 / speed,
            local_ui=900 / speed,
            overall=max(180.0, 3 * 4500 / speed),
        ),
        localui_timeout=15.0,
        retry=DEFAULT_RETRY.scaled(min(1.0, interval)),  # the one policy, its waits as fast as the lab's clock
        link_poll=interval,
        content_poll=interval,
        cluster_poll=interval,
        cluster_expected=max(10.0, 1800 / speed),
        cluster_timeout=max(120.0, 7200 / speed),
        cluster_outage_timeout=max(60.0, 1800 / speed),
        # GRUB's countdown is not scaled (5 s, as on the media); the firmware before it is.
        keys_interval=0.5,
        keys_window=max(2.0, 60 / speed),
        screen_interval=max(0.5, 30 / speed),
        stuck_budget=max(5.0, 300 / speed),
        speed=speed,
        upgrade_expected=max(10.0, 2700 / speed),
        upgrade_timeout=max(120.0, 10800 / speed),
        update_details_timeout=max(60.0, 1800 / speed),
    )


class Rehearsal:
    """The lab, the files and the project of one rehearsal; a context manager that stops the lab on exit and removes
    the folder unless :attr:`keep` is set."""

    def __init__(
        self,
        folder: Path,
        *,
        nodes: int = 3,
        speed: float = 60.0,
        keep: bool = False,
        provider: Provider = "manual",
        vcsim: Path | None = None,
        netns: bool = False,
        console_intercepted: bool = False,
        appliance: ApplianceProfile | None = None,
        bonded: bool = False,
        lab: LabKnobs = NO_KNOBS,
        media: str | None = None,
        boot: str | None = None,
    ) -> None:
        """``vcsim``: the simulator binary for ``provider="vsphere"`` (default: ``vcsim`` on PATH); ``netns``: nodes
        in their own network namespaces (root on Linux); ``console_intercepted``: see the module's docstring;
        ``appliance``: the release the lab plays (default: the ``--lab version=…,edition=…`` knobs, else the newest);
        ``bonded`` (or ``--lab bonded=on``): every node's management network is a VLAN (100) on an LACP bond of its
        first two NICs, configured through the Local UI (``appliance.configure: localui``); ``lab``: the ``--lab``
        knobs (:mod:`wizard.lab.knobs`); ``media`` (or ``--lab media=…``): the GRUB default of the rehearsal's
        appliance ISO, ``interactive`` (entry 2, as the product ships; the default) or ``automatic`` (entry 0);
        ``boot`` (or ``--lab boot=…``): the project's ``appliance.boot`` (default: the project's default,
        ``unattended``)."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        if provider not in PROVIDERS:
            raise ValueError(f"unknown rehearsal provider {provider!r} (one of {', '.join(PROVIDERS)})")
        media = media or str(lab.get("media", "interactive"))
        if media not in MEDIA_CHOICES:
            raise ValueError(f"unknown rehearsal media {media!r} (one of {', '.join(MEDIA_CHOICES)})")
        self.media = media
        self.boot = boot or lab.get("boot")
        self.provider = provider
        self.vcsim_binary = vcsim
        self.folder = folder
        self.n_nodes = nodes
        self.speed = speed
        self.keep = keep
        self.netns = netns
        self.knobs = lab
        lab.node_faults(nodes)  # a knob naming a node the rehearsal does not have: said before anything starts
        self.console_intercepted = console_intercepted or bool(lab.get("console-intercepted", False))
        self.appliance = appliance or profile_from_knobs(
            {k: str(lab.get(k)) for k in ("version", "edition") if lab.get(k) is not None}
        )
        self.bonded = bonded or bool(lab.get("bonded", False))
        home = folder / "home"
        self.paths = AppPaths(home / "state", home / "logs", home / "config", home / "cache")
        self.project_file = folder / "project.yaml"
        self.secrets = SecretStore(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
        # The store keeps values in memory because the fail backend is not secure; say why in the rehearsal's words.
        self.secrets.notice = "Rehearsal: its secrets are generated for this run and kept in memory only."
        self.lab: Lab | None = None
        self.console: SystemConsoleServer | None = None
        self.kube_api: KubeAPIServer | None = None
        self.kube_pki: kubepki.ClusterPKI | None = None
        self.powered_on = False
        # What the wizard told the operator of the ``manual`` provider to attach: the boot ISO and each node's seed.
        self.boot_iso: Path | None = None
        self.seeds: dict[str, Path] = {}
        self.upgrade_bundle: Path | None = None  # a newer release's signed bundle for `palette-wizard upgrade`
        self._kept: dict[str, Any] | None = None  # the state of a kept lab this rehearsal starts again
        self._powered: set[str] = set()  # nodes the rehearsal's operator has powered on
        self.watchers: list[Watcher] = []
        # How a machine racked later (:meth:`rack`) is reached through the control plane: its project entry's
        # provider part and the watcher that makes the lab's machine follow it (None: the manual provider).
        self._control: Callable[[LabNode], dict[str, Any]] | None = None
        self._peers = contextlib.ExitStack()  # the control plane's processes and sessions, closed last-in first-out

    # -- setting up ----------------------------------------------------------------------------------------
    def __enter__(self) -> Rehearsal:
        try:
            self.prepare()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def prepare(self) -> None:
        # Before anything is started: a missing emulator or simulator is the first thing the operator hears.
        if self.netns:
            from wizard.lab.netns import require_support

            require_support()
        if self.provider == "redfish":
            from wizard.lab.sushy import emulator_binary

            emulator_binary()
        elif self.provider == "vsphere":
            from wizard.lab.vcsim import find_vcsim

            self.vcsim_binary = find_vcsim(self.vcsim_binary)
        if self._kept is not None:
            self._reopen(self._kept)
            return
        if self.folder.exists():
            shutil.rmtree(self.folder)  # the last rehearsal's lab is gone; its files would only confuse
        files = self.folder / "files"
        files.mkdir(parents=True)
        self.paths.ensure()
        ip = "" if self.netns else _node_address()
        speed = self.speed
        self.lab = Lab(
            self.n_nodes,
            self.folder / "lab",
            ip=ip or "127.0.0.1",
            netns=self.netns,
            installed=False,
            speed=speed,
            cluster_timeline=float(self.knobs.get("cluster-seconds", DEFAULT_CLUSTER_TIMELINE)) / speed,
            upgrade_timeline=float(self.knobs.get("upgrade-seconds", DEFAULT_UPGRADE_TIMELINE)) / speed,
            content_sync_delay=max(0.2, 300 / speed),
            tick_interval=0.1,
            socket_timeout=15.0,
            log_collect_seconds=max(0.2, 120 / speed),  # a couple of minutes on a real node
            appliance=self.appliance,
            faults=self.knobs.node_faults(self.n_nodes) or None,
            variant=Variant(self.knobs.variant),
            http_5xx=self.knobs.http_5xx,
            seed=self.knobs.seed,
            media=self.media,
        ).start()
        for node in self.lab.nodes:  # a configuration (and a network change) applies in seconds at speed 60
            node.state.configure_seconds = max(0.2, CONFIGURE_SECONDS * 60 / speed)
            error = self.knobs.node_value(node.index, "configure_error")
            if error:
                node.state.configure_error = str(error)
            node.state.upgrade_error = str(self.knobs.get("upgrade-error") or "")
        iso = appliance_iso(
            files / ISO_NAME,
            default=INTERACTIVE_DEFAULT if self.media == "interactive" else 0,
            timeout=int(self.knobs.get("grub-timeout", MENU_TIMEOUT)),
        )
        key, public_key = make_key(files)
        sign_file(key, iso, iso.with_name(iso.name + ".sig.bin"))  # as Artifact Studio ships it
        bundle = random_file(files / "core-content-rehearsal.tar.zst", BUNDLE_SIZE)
        signature = files / "core-content-rehearsal.tar.sig.bin"
        sign_file(key, bundle, signature)
        packs = []
        for name, size in PACK_BUNDLES:
            (files / "packs").mkdir(exist_ok=True)
            pack = random_file(files / "packs" / name, size)
            pack_signature = pack.with_name(name.removesuffix(".zst") + ".sig.bin")
            sign_file(key, pack, pack_signature)
            packs.append(
                {"path": str(pack.relative_to(self.folder)), "signature": str(pack_signature.relative_to(self.folder))}
            )
        self.upgrade_bundle = self._upgrade_bundle(files, key)
        # What an operator brings for the console (a CA and the certificate it issued for the root domain), for the
        # install option (--lab console-certificate=on) and for `palette-wizard certificates` on the kept rehearsal.
        console_files = operator_certificate(files / "certificates", CONSOLE_DOMAIN, ip=VIP if not self.netns else "")
        for ref in (NODE_PASSWORD_KEY, OCI_PASSWORD_KEY, CONSOLE_PASSWORD_KEY):
            self.secrets.set(SecretRef(ref), secrets.token_urlsafe(18))
        network = self.lab.network
        if network is not None:
            vip, prefix, gateway = network.host_address(NETNS_VIP_HOST), network.prefixlen, network.gateway
        else:
            vip, prefix, gateway = VIP, 8, "127.0.0.254"
        console = self._start_console(ip, vip)
        doc: dict[str, Any] = {
            "schema_version": 1,
            "name": PROJECT_NAME,
            "provider": {"type": "manual"},
            "nodes": [
                {
                    "name": node.name,
                    "hostname": node.name,
                    "ip": node.state.ip,
                    "prefix": prefix,
                    "gateway": gateway,
                    "ssh_port": node.ssh.port,
                    "localui_port": node.server.port,
                    "ssh_host_key": node.ssh.fingerprint,
                    "localui_fingerprint": node.fingerprint,
                }
                for node in self.lab.nodes
            ],
            # No DNS or NTP servers: the preflight probes must stay on this machine.
            "network": {"vip": vip},
            "files": {
                "iso": str(iso.relative_to(self.folder)),
                "content_bundle": {
                    "path": str(bundle.relative_to(self.folder)),
                    "signature": str(signature.relative_to(self.folder)),
                },
                "public_key": str(public_key.relative_to(self.folder)),
                "pack_bundles": packs,
            },
            "appliance": {
                "username": "kairos",
                "password": {"secret": NODE_PASSWORD_KEY},
                **({"boot": self.boot} if self.boot else {}),
            },
            "cluster": {"secret_variables": {"ociPackRegistryPassword": {"secret": OCI_PASSWORD_KEY}}},
        }
        if self.n_nodes < 3:  # the profile's replica counts default to 3; fewer nodes hold one copy each
            doc["cluster"]["variables"] = {"csiPlacementCount": "1", "mongoReplicas": "1"}
        if self.n_nodes == 2:  # two etcd members have no quorum: two-node high availability
            doc["cluster"]["two_node"] = True
        if self.bonded:
            doc["appliance"]["configure"] = "localui"
            for entry in doc["nodes"]:
                entry["network"] = BONDED_NETWORK
        if console is not None:
            # The lab plays Spectro support too: the key it issues is for this console's Product Setup ID.
            self.secrets.set(SecretRef(ACTIVATION_KEY_REF), console.state.issue_activation_key().key)
            doc["console"] = {
                "email": CONSOLE_EMAIL,
                "password": {"secret": CONSOLE_PASSWORD_KEY},
                "port": console.port,
                # No tls_fingerprint, as in a real project: the certificate is made with the cluster; the leader
                # vouches for it over its pinned SSH session when the console step first meets it.
            }
            doc["activation"] = {"key": {"secret": ACTIVATION_KEY_REF}}
            if self.knobs.get("console-certificate", False):
                cert, key_file, ca = (str(p.relative_to(self.folder)) for p in console_files)
                doc["console"]["certificate"] = {"cert": cert, "key": key_file, "ca": ca}
                doc["console"]["domain"] = CONSOLE_DOMAIN
        if self.provider == "redfish":
            self._with_bmcs(doc)
        elif self.provider == "vsphere":
            self._with_vcenter(doc)
        header = f"# {BANNER}\n# Written by `palette-wizard run --rehearse`; the lab it names is gone once it ends.\n"
        self.project_file.write_text(header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        log.info(
            "rehearsal lab: %d node(s) playing %s on %s, provider %s, speed %g, knobs %s, folder %s",
            self.n_nodes,
            self.appliance.label,
            ip or f"their own network namespaces ({', '.join(n.state.ip for n in self.lab.nodes)})",
            self.provider,
            speed,
            self.knobs.describe(),
            self.folder,
        )
        for line in Variant(self.knobs.variant).describe():
            log.debug("rehearsal variant %d: %s", self.knobs.variant, line)

    def _upgrade_bundle(self, files: Path, key: Any) -> Path | None:
        """A signed content bundle of a newer release for `palette-wizard upgrade` on the kept project (the
        ``upgrade-to`` knob, else the next release the reference names); None past the newest."""
        wanted = self.knobs.get("upgrade-to")
        target = Version.parse(wanted) if wanted else next_release(self.appliance.version)
        if target is None:
            return None
        folder = files / "upgrade"
        folder.mkdir()
        bundle = content_bundle(
            folder / f"core-content-{target}-rehearsal.tar.zst", str(target), edition=self.appliance.edition.value
        )
        sign_file(key, bundle, folder / f"core-content-{target}-rehearsal.tar.sig.bin")
        return bundle

    # -- a kept rehearsal -----------------------------------------------------------------------------------------
    @classmethod
    def reopen(cls, folder: Path, *, lab: LabKnobs = NO_KNOBS) -> Rehearsal:
        """The rehearsal ``--keep`` left in ``folder``, its lab started again as it was (:mod:`wizard.lab.keep`):
        same nodes, addresses, certificates and cluster, every secret re-keyed for this session. ``lab`` adds fault
        knobs; which appliance the lab plays stays the kept one."""
        state = read_state(folder)
        saved = parse_knobs(str(state.get("knobs") or "")) if state.get("knobs") not in (None, "none") else NO_KNOBS
        fixed = sorted(k for k in lab.values if k in KEPT_KNOBS)
        if fixed:
            raise LabKnobError(
                "Knob of the kept lab",
                f"{', '.join(fixed)} cannot change on a kept lab: it plays what it was installed as",
                remediation="leave these knobs out, or run a new rehearsal with them",
            )
        merged = LabKnobs({**saved.values, **lab.values}, {**saved.nodes, **lab.nodes})
        appliance = state.get("appliance") or {}
        profile = profile_from_knobs({k: str(v) for k, v in appliance.items() if k in ("version", "edition")})
        rehearsal = cls(
            folder,
            nodes=len(state.get("nodes") or []),
            speed=float(state.get("speed") or 60.0),
            keep=True,
            appliance=profile,
            lab=merged,
        )
        rehearsal._kept = state
        return rehearsal

    def _write_kept(self) -> None:
        """Record the lab for a later session (``reopen``); never a secret (see :mod:`wizard.lab.keep`)."""
        assert self.lab is not None
        console = self.console
        state = {
            **lab_state(self.lab),
            "speed": self.speed,
            "knobs": self.knobs.describe(),
            "console": None if console is None else {**console.state.kept(), "port": console.port},
            "kube_api_port": self.kube_api.port if self.kube_api is not None else None,
            "upgrade_bundle": str(self.upgrade_bundle) if self.upgrade_bundle is not None else "",
        }
        write_state(self.folder, state)

    def _reopen(self, state: dict[str, Any]) -> None:
        from wizard.rehearsal.kept import restart

        restart(self, state)

    # -- control planes ----------------------------------------------------------------------------------------
    def _with_bmcs(self, doc: dict[str, Any]) -> None:
        """One sushy-emulator with a System per node; each node's BMC in the project, each machine watched."""
        from wizard.lab.sushy import SushyEmulator

        lab = self.lab
        assert lab is not None
        # Spare Systems: the BMCs of machines racked later to add to the appliance (``rack``), powered off till then.
        emulator = SushyEmulator(
            systems=self.n_nodes + SPARE_BMCS,
            folder=self.folder / "bmc",
            http_5xx=self.knobs.http_5xx,
            seed=self.knobs.seed,
        )
        self._peers.callback(emulator.stop)
        emulator.start()
        self.secrets.set(SecretRef(BMC_PASSWORD_KEY), emulator.password)
        # The ISO server listens where the emulator (on loopback) can fetch from.
        doc["provider"] = {"type": "redfish", "redfish": {"iso_server_bind": emulator.host}}

        def bmc_of(node: LabNode) -> dict[str, Any]:
            if node.index >= len(emulator.systems):
                raise LabKnobError(
                    "No spare BMC",
                    f"the rehearsal's emulator has {len(emulator.systems)} Systems, all in use",
                    remediation=f"rack at most {SPARE_BMCS} machine(s) in a rehearsal through Redfish",
                )
            self._watch(
                RedfishWatcher(
                    node.machine,
                    emulator.base_url,
                    f"/redfish/v1/Systems/{emulator.systems[node.index]}",
                    auth=(emulator.username, emulator.password),
                    verify=emulator.client_context(),
                    interval=WATCH_INTERVAL,
                )
            )
            return {
                "bmc": {
                    "address": emulator.address(node.index),
                    "username": emulator.username,
                    "password": {"secret": BMC_PASSWORD_KEY},
                    "tls_fingerprint": emulator.fingerprint,
                }
            }

        for entry, node in zip(doc["nodes"], lab.nodes, strict=True):
            entry.update(bmc_of(node))
        self._control = bmc_of

    def _with_vcenter(self, doc: dict[str, Any]) -> None:
        """vcsim as the vCenter; the wizard creates one VM per node (``pma-<node>``), each watched by its machine."""
        from wizard.core.project import VmMode, VmSpec, VsphereSettings
        from wizard.core.trust import TrustStore
        from wizard.lab import vcsim
        from wizard.providers.vsphere.session import connect

        lab = self.lab
        assert lab is not None and self.vcsim_binary is not None
        server = vcsim.VcsimProcess(self.vcsim_binary, self.folder / "vcenter")
        self._peers.callback(server.stop)
        server.start()
        fingerprint = server.fingerprint  # the certificate made for it: pinned, nothing to confirm
        password = secrets.token_urlsafe(12)  # vcsim takes any non-empty credentials
        self.secrets.set(SecretRef(VCENTER_PASSWORD_KEY), password)
        vm = VmSpec(cpus=2, memory_gb=1, os_disk_gb=1, data_disk_gb=1)  # what the simulated hosts can hold
        doc["provider"] = {
            "type": "vsphere",
            "vsphere": {
                "server": server.host,
                "port": server.port,
                "username": vcsim.USER,
                "password": {"secret": VCENTER_PASSWORD_KEY},
                "datacenter": vcsim.DATACENTER,
                "cluster": vcsim.CLUSTER,
                "datastore": vcsim.DATASTORE,
                "network": vcsim.NETWORK,
                "tls_fingerprint": fingerprint,
                "vm": {"cpus": vm.cpus, "memory_gb": vm.memory_gb, "os_disk_gb": 1, "data_disk_gb": 1},
            },
        }
        settings = VsphereSettings(
            server=server.host,
            username=vcsim.USER,
            password=SecretRef(VCENTER_PASSWORD_KEY),
            datacenter=vcsim.DATACENTER,
            datastore=vcsim.DATASTORE,
            network=vcsim.NETWORK,
            port=server.port,
            cluster=vcsim.CLUSTER,
            vm_mode=VmMode.CREATE,
            vm=vm,
            tls_fingerprint=fingerprint,
        )
        trust = TrustStore(self.folder / "watcher-trust")
        session = self._peers.enter_context(connect(settings, password, trust, None))
        fetch, reader, screens = datastore_fetcher(session), datastore_reader(session), datastore_writer(session)

        def vm_of(node: LabNode) -> dict[str, Any]:
            name = f"pma-{node.name}"  # created by the wizard's machines step; watched from before it exists
            self._watch(
                VSphereWatcher(
                    node.machine, session.si, name, interval=WATCH_INTERVAL, fetch=fetch, reader=reader, screens=screens
                )
            )
            return {"vm": name}

        for entry, node in zip(doc["nodes"], lab.nodes, strict=True):
            entry.update(vm_of(node))
        self._control = vm_of

    def _watch(self, watcher: Watcher) -> None:
        self.watchers.append(watcher)
        self._peers.callback(watcher.stop)
        watcher.start()

    def _start_console(
        self, node_ip: str, vip: str, *, ports: tuple[int, int] | None = None
    ) -> SystemConsoleServer | None:
        """Palette's system console at the VIP, answering once the lab's cluster runs (on namespaces, the VIP exists
        only from then on). Where only 127.0.0.1 is loopback (macOS) the VIP cannot be served, and the rehearsal ends
        with the cluster."""
        if node_ip == "127.0.0.1":
            log.warning("rehearsal: %s is not a local address here; no system console at the VIP", VIP)
            return None
        lab = self.lab
        assert lab is not None

        def cluster_running() -> bool:
            now = lab.clock()
            return any(n.state.cluster is not None and n.state.cluster.running(now) for n in lab.nodes)

        def palette_up() -> bool:  # the consoles are down while an archive update is applied
            now = lab.clock()
            return any(n.state.cluster is not None and n.state.cluster.serving(now) for n in lab.nodes)

        knobs = self.knobs
        state = SystemConsoleState(
            lab.clock,
            sync_duration=max(0.5, float(knobs.get("sync-seconds", DEFAULT_SYNC_DURATION)) / self.speed),
            available=palette_up,
            version=str(self.appliance.version),  # Palette as installed by the release the lab plays
            # The content bundle brings packs of its own, one of the same name as a pack bundle (issue 20, #4).
            bundled=(*lab_cluster.PACKS, pack_identity(PACK_BUNDLES[0][0]) or ("ubuntu", "")),
            variant=Variant(knobs.variant),
            http_faults=HttpFaults(knobs.http_5xx, seed=knobs.seed, label="console"),
        )
        state.sync_fault = knobs.get("sync-fault")
        state.import_seconds = float(knobs.get("pack-import-seconds", PACK_IMPORT_SECONDS)) / self.speed
        state.import_fault = knobs.get("pack-import-error")
        state.timeline = lab.timeline
        certificate = load_or_create_node_certificate(
            self.folder / "lab" / "system-console", ip=vip, hostname=PROJECT_NAME
        )
        kept = (self._kept or {}).get("console") or {}
        custom = (
            load_node_certificate(certificate.cert_path.parent / "custom") if kept.get("custom_certificate") else None
        )
        # The lab starts it at the VIP once the cluster runs, so its port is fixed now: the project names it. On the
        # shared loopback a free port (two rehearsals may run at once), on namespaces the real one.
        port = CONSOLE_PORT if lab.network is not None else (ports[0] if ports else free_port(vip))
        self.console = SystemConsoleServer(state, custom or certificate, host=vip, port=port, socket_timeout=15.0)
        if custom is not None:  # a kept console serves the operator's certificate it was given
            state.domain.custom = ServedCertificate(
                custom.cert_path.read_text(encoding="ascii"), custom.key_path.read_text(encoding="ascii")
            )
        if self.console_intercepted:
            self.console.presented = create_node_certificate(
                self.folder / "lab" / "interceptor", ip=vip, hostname=PROJECT_NAME
            )
        lab.serve_at_vip(self.console)
        # The cluster's Kubernetes API beside it: 6443 as on a real VIP, a free port on the shared loopback (two
        # rehearsals may run at once there; the kubeconfig names the port).
        self.kube_pki = kubepki.load_or_create(self.folder / "lab" / "kubernetes-pki", vip)
        profile = self.appliance
        self.kube_api = KubeAPIServer(
            self.kube_pki,
            cluster_running,
            host=vip,
            pods=lambda: cluster_pods(profile.ingress, cluster_running()),
            storage=self._storage,
            port=KUBE_API_PORT if lab.network is not None else (ports[1] if ports else free_port(vip)),
            secrets=self._tls_secrets,
            faults=HttpFaults(self.knobs.http_5xx, seed=self.knobs.seed, label="kube-api"),
        )
        lab.serve_at_vip(self.kube_api)
        return self.console

    def _tls_secrets(self) -> list[dict[str, Any]]:
        """The cluster's TLS secrets: the API server's own and, unless ``--lab console-secret=off``, the certificate
        the console serves now (the operator's once given), where the variant keeps it."""
        out = []
        if self.kube_pki is not None:
            out.append(
                tls_secret("kube-system", "apiserver-tls", self.kube_pki.server_cert.read_text(encoding="ascii"))
            )
        console = self.console
        if console is not None and self.knobs.get("console-secret", True):
            namespace, name = Variant(self.knobs.variant)("kube.console-secret")
            out.append(tls_secret(namespace, name, console.certificate.cert_path.read_text(encoding="ascii")))
        return out

    def _storage(self) -> dict[str, Any]:
        """The cluster's storage as the release it plays left it: 4.7.15's Zot claim is ReadWriteMany and 4.7.27's
        HA storage class is wrong until the docs' pre-upgrade script ran (``--lab pre-upgrade-done=on``)."""
        if self.lab is None or self.knobs.get("pre-upgrade-done", False):
            return SOUND_STORAGE
        version = self.lab.nodes[0].state.profile.version
        if version == Version(4, 7, 15):
            return {**SOUND_STORAGE, "zot_modes": ["ReadWriteMany"]}
        if version == Version(4, 7, 27):
            return {**SOUND_STORAGE, "storage_class": {"resourceGroup": "lvm", "placementCount": "1"}}
        return SOUND_STORAGE

    def steps(self, until: str | None = None) -> list[Step]:
        return pipeline(self.preflight_settings(), pacing=pacing_for(self.speed), until=until)

    # -- the operator ----------------------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """Plays the operator of the ``manual`` provider: reads which files the wizard says to attach (the boot ISO
        the media step made, each node's seed) and, when the boot step asks, attaches them and powers every node on.
        With a control plane, the wizard's provider does that through it."""
        if isinstance(event, JobFinished) and event.status in (TaskStatus.DONE, TaskStatus.SKIPPED):
            if event.job == "media/unattended" and event.result.get("path"):
                self.boot_iso = Path(str(event.result["path"]))
            elif event.job.startswith("media/seed/") and event.result.get("path"):
                self.seeds[event.node or event.job.rsplit("/", 1)[1]] = Path(str(event.result["path"]))
        if self.provider == "manual" and isinstance(event, StepStarted) and event.step == "boot":
            self.power_on()

    def power_on(self) -> None:
        """Insert the ISO into every machine that is off and power it on (the nodes to install)."""
        if self.lab is None:
            return
        self.powered_on = True
        iso = self.boot_iso or self.folder / "files" / ISO_NAME
        for node in self.lab.nodes:
            if node.name in self._powered or node.machine.powered_on:
                continue
            self._powered.add(node.name)  # once: a node that powers itself off after its install stays off
            node.machine.insert_media(iso.as_uri())
            seed = self.seeds.get(node.name)
            if seed is not None and seed.is_file():
                node.machine.insert_seed(str(seed), seed.read_bytes())
            node.machine.power_on()
            log.info("rehearsal: %s (and its seed, if any) inserted into %s, powered on", iso.name, node.name)

    def preflight_settings(self) -> PreflightSettings:
        """How preflight probes in a rehearsal: everything stays on this machine."""
        return PreflightSettings(icmp=False, arp=False, connect_timeout=0.5, min_free=256 * 1024 * 1024)

    def rack(self, names: list[str]) -> list[str]:
        """Play the operator who racks new machines and adds them to the project: for each name the project lacks,
        a node the lab adds (not installed yet) under that name, written into the project with its ports and pinned
        fingerprints. No name: one machine, named as the lab names its next node. The names to add."""
        from wizard.rehearsal.kept import rack

        return rack(self, names)

    def close(self) -> None:
        if self.keep and self.lab is not None and self.provider == "manual":
            try:
                self._write_kept()
            except Exception:  # the lab must stop all the same; a later day-2 session says the state is missing
                log.exception("rehearsal: the kept lab's state could not be written")
        self._peers.close()  # watchers first (they read the control plane), then sessions and processes
        self.watchers = []
        if self.console is not None:
            self.console.stop()
            self.console = None
        if self.kube_api is not None:
            self.kube_api.stop()
            self.kube_api = None
        if self.kube_pki is not None:
            kubepki.forget(self.kube_pki)
            self.kube_pki = None
        if self.lab is not None:
            self.lab.stop()
            self.lab = None
        if not self.keep:
            # Logs and handlers may still point inside; ignore what cannot be removed on platforms that lock files.
            shutil.rmtree(self.folder, ignore_errors=True)
