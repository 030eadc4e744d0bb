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
from pathlib import Path
from typing import Any, Literal

import keyring.backends.fail
import yaml

from wizard.appliance.monitor import Budgets, PollSettings
from wizard.core.jobs import Step
from wizard.core.paths import AppPaths
from wizard.core.project import SecretRef
from wizard.core.runner import Event, StepStarted
from wizard.core.secrets import SecretStore
from wizard.install.steps import pipeline
from wizard.install.steps.nodes import Pacing
from wizard.install.steps.preflight import PreflightSettings
from wizard.lab.artifacts import appliance_iso, make_key, random_file, sign_file
from wizard.lab.certs import create_node_certificate
from wizard.lab.console import DEFAULT_SYNC_DURATION, SystemConsoleServer, SystemConsoleState
from wizard.lab.controlplane import RedfishWatcher, VSphereWatcher, Watcher
from wizard.lab.kubeapi import KUBE_API_PORT, KubeAPIServer
from wizard.lab.lab import Lab
from wizard.lab.node import DEFAULT_CLUSTER_TIMELINE
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
BUNDLE_SIZE = 4 * 1024 * 1024
PACK_BUNDLES = (("ubuntu-22.04.5.zst", 1024 * 1024), ("pxk-e-1.30.6.zst", 2 * 1024 * 1024))
BMC_PASSWORD_KEY = "rehearsal-bmc-password"  # noqa: S105 - a keyring name, not a password
VCENTER_PASSWORD_KEY = "rehearsal-vcenter-password"  # noqa: S105 - a keyring name, not a password
PROVIDERS = ("manual", "redfish", "vsphere")
Provider = Literal["manual", "redfish", "vsphere"]
WATCH_INTERVAL = 0.1


def _node_address() -> str:
    """127.0.10.1 where all of 127/8 is loopback (Linux, Windows): the preflight probes of the nodes' address then
    see only the lab. Elsewhere (macOS has just 127.0.0.1) the nodes share 127.0.0.1."""
    try:
        with socket.socket() as s:
            s.bind(("127.0.10.1", 0))
        return "127.0.10.1"
    except OSError:
        return "127.0.0.1"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


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
        retry_backoff=min(1.0, interval),
        link_poll=interval,
        content_poll=interval,
        cluster_poll=interval,
        cluster_expected=max(10.0, 1800 / speed),
        cluster_timeout=max(120.0, 7200 / speed),
        cluster_outage_timeout=max(60.0, 1800 / speed),
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
    ) -> None:
        """``vcsim``: the simulator binary for ``provider="vsphere"`` (default: ``vcsim`` on PATH); ``netns``: nodes
        in their own network namespaces (root on Linux); ``console_intercepted``: see the module's docstring."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        if provider not in PROVIDERS:
            raise ValueError(f"unknown rehearsal provider {provider!r} (one of {', '.join(PROVIDERS)})")
        self.provider = provider
        self.vcsim_binary = vcsim
        self.folder = folder
        self.n_nodes = nodes
        self.speed = speed
        self.keep = keep
        self.netns = netns
        self.console_intercepted = console_intercepted
        home = folder / "home"
        self.paths = AppPaths(home / "state", home / "logs", home / "config", home / "cache")
        self.project_file = folder / "project.yaml"
        self.secrets = SecretStore(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
        # The store keeps values in memory because the fail backend is not secure; say why in the rehearsal's words.
        self.secrets.notice = "Rehearsal: its secrets are generated for this run and kept in memory only."
        self.lab: Lab | None = None
        self.console: SystemConsoleServer | None = None
        self.kube_api: KubeAPIServer | None = None
        self.powered_on = False
        self.watchers: list[Watcher] = []
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
            cluster_timeline=DEFAULT_CLUSTER_TIMELINE / speed,
            content_sync_delay=max(0.2, 300 / speed),
            tick_interval=0.1,
            socket_timeout=15.0,
            log_collect_seconds=max(0.2, 120 / speed),  # a couple of minutes on a real node
        ).start()
        iso = appliance_iso(files / "palette-edge-installer.iso")
        key, public_key = make_key(files)
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
            "appliance": {"username": "kairos", "password": {"secret": NODE_PASSWORD_KEY}},
            "cluster": {"secret_variables": {"ociPackRegistryPassword": {"secret": OCI_PASSWORD_KEY}}},
        }
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
        if self.provider == "redfish":
            self._with_bmcs(doc)
        elif self.provider == "vsphere":
            self._with_vcenter(doc)
        header = f"# {BANNER}\n# Written by `palette-wizard run --rehearse`; the lab it names is gone once it ends.\n"
        self.project_file.write_text(header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        log.info(
            "rehearsal lab: %d node(s) on %s, provider %s, speed %g, folder %s",
            self.n_nodes,
            ip or f"their own network namespaces ({', '.join(n.state.ip for n in self.lab.nodes)})",
            self.provider,
            speed,
            self.folder,
        )

    # -- control planes ----------------------------------------------------------------------------------------
    def _with_bmcs(self, doc: dict[str, Any]) -> None:
        """One sushy-emulator with a System per node; each node's BMC in the project, each machine watched."""
        from wizard.lab.sushy import SushyEmulator

        lab = self.lab
        assert lab is not None
        emulator = SushyEmulator(systems=self.n_nodes, folder=self.folder / "bmc")
        self._peers.callback(emulator.stop)
        emulator.start()
        self.secrets.set(SecretRef(BMC_PASSWORD_KEY), emulator.password)
        # The ISO server listens where the emulator (on loopback) can fetch from.
        doc["provider"] = {"type": "redfish", "redfish": {"iso_server_bind": emulator.host}}
        for i, node in enumerate(doc["nodes"]):
            node["bmc"] = {
                "address": emulator.address(i),
                "username": emulator.username,
                "password": {"secret": BMC_PASSWORD_KEY},
                "tls_fingerprint": emulator.fingerprint,
            }
        for i, node in enumerate(lab.nodes):
            watcher = RedfishWatcher(
                node.machine,
                emulator.base_url,
                f"/redfish/v1/Systems/{emulator.systems[i]}",
                auth=(emulator.username, emulator.password),
                verify=emulator.client_context(),
                interval=WATCH_INTERVAL,
            )
            self._watch(watcher)

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
        names = [f"pma-{node.name}" for node in lab.nodes]
        for entry, name in zip(doc["nodes"], names, strict=True):
            entry["vm"] = name
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
        for node, name in zip(lab.nodes, names, strict=True):
            self._watch(VSphereWatcher(node.machine, session.si, name, interval=WATCH_INTERVAL))

    def _watch(self, watcher: Watcher) -> None:
        self.watchers.append(watcher)
        self._peers.callback(watcher.stop)
        watcher.start()

    def _start_console(self, node_ip: str, vip: str) -> SystemConsoleServer | None:
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

        state = SystemConsoleState(
            lab.clock, sync_duration=max(0.5, DEFAULT_SYNC_DURATION / self.speed), available=cluster_running
        )
        state.timeline = lab.timeline
        certificate = create_node_certificate(self.folder / "lab" / "system-console", ip=vip, hostname=PROJECT_NAME)
        # The lab starts it at the VIP once the cluster runs, so its port is fixed now: the project names it. On the
        # shared loopback a free port (two rehearsals may run at once), on namespaces the real one.
        port = CONSOLE_PORT if lab.network is not None else _free_port(vip)
        self.console = SystemConsoleServer(state, certificate, host=vip, port=port, socket_timeout=15.0)
        if self.console_intercepted:
            self.console.presented = create_node_certificate(
                self.folder / "lab" / "interceptor", ip=vip, hostname=PROJECT_NAME
            )
        lab.serve_at_vip(self.console)
        # The cluster's Kubernetes API beside it: 6443 as on a real VIP, a free port on the shared loopback (two
        # rehearsals may run at once there; the kubeconfig names the port).
        self.kube_api = KubeAPIServer(
            certificate, cluster_running, host=vip, port=KUBE_API_PORT if lab.network is not None else _free_port(vip)
        )
        lab.serve_at_vip(self.kube_api)
        return self.console

    def steps(self, until: str | None = None) -> list[Step]:
        settings = PreflightSettings(icmp=False, arp=False, connect_timeout=0.5, min_free=256 * 1024 * 1024)
        return pipeline(settings, pacing=pacing_for(self.speed), until=until)

    # -- the operator ----------------------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """Plays the operator of the ``manual`` provider: when the boot step asks, boot every node from the ISO.
        With a control plane, the wizard's provider does that through it."""
        if self.provider == "manual" and isinstance(event, StepStarted) and event.step == "boot":
            self.power_on()

    def power_on(self) -> None:
        if self.lab is None or self.powered_on:
            return
        self.powered_on = True
        iso = self.folder / "files" / "palette-edge-installer.iso"
        for node in self.lab.nodes:
            node.machine.insert_media(iso.as_uri())
            node.machine.power_on()
        log.info("rehearsal: the ISO is inserted and every node powered on")

    def close(self) -> None:
        self._peers.close()  # watchers first (they read the control plane), then sessions and processes
        self.watchers = []
        if self.console is not None:
            self.console.stop()
            self.console = None
        if self.kube_api is not None:
            self.kube_api.stop()
            self.kube_api = None
        if self.lab is not None:
            self.lab.stop()
            self.lab = None
        if not self.keep:
            # Logs and handlers may still point inside; ignore what cannot be removed on platforms that lock files.
            shutil.rmtree(self.folder, ignore_errors=True)
