"""The rehearsal lab: N simulated appliance nodes, each with its own Local UI and SSH servers, on loopback or (as
root on Linux, ``netns=True``) each in its own network namespace at its own address (:mod:`wizard.lab.netns`)."""

from __future__ import annotations

import ipaddress
import logging
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from wizard.lab import network
from wizard.lab import upgrade as lab_upgrade
from wizard.lab.bootmenu import MEDIA_CHOICES
from wizard.lab.certs import NodeCertificate, create_node_certificate, load_or_create_node_certificate
from wizard.lab.httpfaults import HttpFaults
from wizard.lab.links import LinkRegistry
from wizard.lab.localui import LocalUIServer
from wizard.lab.machine import Machine, Timings
from wizard.lab.node import (
    DEFAULT_CLUSTER_TIMELINE,
    DEFAULT_UPGRADE_TIMELINE,
    Clock,
    Hardware,
    LoginPolicy,
    NodeState,
)
from wizard.lab.nodelogs import LOG_COLLECT_SECONDS, LogSource, NodeLogs
from wizard.lab.ports import free_port
from wizard.lab.sclient import s_client
from wizard.lab.sftp import attach_staging
from wizard.lab.sshd import LabSSHServer, NodeShell, load_or_create_host_key
from wizard.lab.timeline import Timeline
from wizard.lab.tlsserver import BackgroundServer
from wizard.lab.variants import REFERENCE, Variant
from wizard.lab.versions import ApplianceProfile

if TYPE_CHECKING:
    from wizard.lab.netns import LabNetwork

log = logging.getLogger(__name__)


GIB = 1024**3
# In its own namespace a node listens where an appliance does (reference §1.5): nothing else shares its ports.
NODE_SSH_PORT = 22
NODE_LOCALUI_PORT = 5080


@dataclass(frozen=True)
class NodeFaults:
    """What is wrong with one lab node, as configuration; :meth:`LabNode.apply` sets the matching runtime knobs.

    Each field maps to a plain attribute that may also be changed while the lab runs:

    ============================  ===========================================================================
    ``install_error``             ``machine.install_error``: the installer logs ``ERROR failed installing: …``
    ``ssh_drop_every``            ``ssh.drop_every``: live SSH sessions are cut every N lab-clock seconds
    ``localui_errors``            ``state.localui_errors``: the next N Local UI requests get a 500
    ``localui_stall``             ``state.stall(S)``: Local UI requests are accepted, never answered, for S s
    ``upload_rate``               ``state.upload_rate``: bytes per second on the upload-content body
    ``upload_errors``             ``state.upload_errors``: the next N uploads fail with a 500 once received
    ``token_ttl``                 ``state.token_ttl``: Local UI tokens expire after this many seconds
    ``cpus`` / ``memory_mb``      ``machine.cpus`` / ``machine.memory_mb``: the facts SSH and the Local UI report
    ``disks``                     ``machine.disks`` (name, bytes); a target disk too small fails the install
    ``clock_skew``                ``machine.clock_offset``: seconds the node's clock is off (``date``, Local UI)
    ``ntp_enabled``/``ntp_servers``  ``machine.ntp_enabled`` / ``machine.ntp_servers`` (``timedatectl``)
    ``stale_partitions``          ``machine.stale_partitions``: disks with an earlier install's COS partitions
    ``never_boots``               ``machine.never_boots``: power on does nothing
    ``log_collection_error``      ``logs.fail_reason``: the Local UI's generate-logs ends ``Failed``
    ============================  ===========================================================================
    """

    install_error: str = ""
    ssh_drop_every: float | None = None
    localui_errors: int = 0
    localui_stall: float = 0.0
    upload_rate: float | None = None
    upload_errors: int = 0
    token_ttl: float | None = None
    cpus: int | None = None
    memory_mb: int | None = None
    disks: tuple[tuple[str, int], ...] | None = None
    clock_skew: float = 0.0
    ntp_enabled: bool = True
    ntp_servers: tuple[str, ...] | None = None
    stale_partitions: tuple[str, ...] = ()
    never_boots: bool = False
    log_collection_error: str = ""


@dataclass(frozen=True)
class _NodeRecipe:
    """How the lab makes each node (the constructor's settings), so a node can be added later alike."""

    clock: Clock
    ip: str
    speed: float
    timings: Timings
    login_policy: LoginPolicy | None
    content_sync_delay: float
    cluster_timeline: float
    upgrade_timeline: float
    variant: Variant
    http_5xx: float
    seed: int
    socket_timeout: float
    log_collect_seconds: float


@dataclass(frozen=True)
class LabNode:
    index: int
    state: NodeState
    certificate: NodeCertificate
    server: LocalUIServer
    machine: Machine
    ssh: LabSSHServer
    logs: NodeLogs
    namespace: str | None = None  # the node's network namespace, when the lab runs on namespaces

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def fingerprint(self) -> str:
        return self.certificate.fingerprint

    @property
    def cert_path(self) -> Path:
        return self.certificate.cert_path

    def client_ssl_context(self) -> ssl.SSLContext:
        """Trusts this node's certificate only, the way a client that pinned it would."""
        return self.certificate.client_context()

    def apply(self, faults: NodeFaults) -> None:
        """Set this node's fault knobs from ``faults`` (a default ``NodeFaults()`` clears the ones it names)."""
        m, st = self.machine, self.state
        m.install_error = faults.install_error
        m.never_boots = faults.never_boots
        m.clock_offset = faults.clock_skew
        m.ntp_enabled = faults.ntp_enabled
        if faults.ntp_servers is not None:
            m.ntp_servers = faults.ntp_servers
        m.stale_partitions = faults.stale_partitions
        if faults.cpus is not None:
            m.cpus = faults.cpus
        if faults.memory_mb is not None:
            m.memory_mb = faults.memory_mb
        if faults.disks is not None:
            m.disks = faults.disks
        self.ssh.drop_every = faults.ssh_drop_every
        st.localui_errors = faults.localui_errors
        st.stall(faults.localui_stall)
        st.upload_rate = faults.upload_rate
        st.upload_errors = faults.upload_errors
        st.token_ttl = faults.token_ttl
        self.logs.fail_reason = faults.log_collection_error


def _skew_of(machine: Machine) -> Callable[[], float]:
    return lambda: machine.clock_offset


def _lines(read: Callable[[], list[str]]) -> LogSource:
    def text() -> str | None:
        lines = read()
        return "".join(line + "\n" for line in lines) if lines else None

    return text


def node_log_sources(machine: Machine) -> dict[str, LogSource]:
    """The files a node's log collection archives, read live from its machine (paths as on the appliance):
    the journal of the running boot, the whole journal since the first boot (as the after-reset stage saves it to
    ``/usr/local/installer.log``) and the stylus agent's log."""
    return {
        "journalctl.log": _lines(machine.journal),
        "usr/local/installer.log": _lines(lambda: machine.journal(this_boot=False)),
        "var/log/stylus-agent.log": _lines(machine.service_log),
    }


def machine_facts(machine: Machine) -> Callable[[], Hardware]:
    """The Local UI's hardware facts read live from the machine, so SSH and the Local UI always agree."""

    def facts() -> Hardware:
        return Hardware(
            cpu_cores=machine.cpus,
            memory_mb=machine.memory_mb,
            disks_gb=tuple(round(size / GIB) for _, size in machine.disks),
        )

    return facts


class Lab:
    """N nodes sharing a :class:`LinkRegistry` (their "network") and one clock; use as a context manager.

    Node i is named ``<name_prefix>-<i+1>`` and keeps its data and TLS files under ``base_dir/<name>``.

    Clock-driven events that change the network (a node's Local UI going down while it reboots during cluster
    deployment, and coming back) happen in :meth:`tick`. With ``tick_interval`` set, a background thread calls it
    for real-time rehearsals; tests on a manual clock pass ``tick_interval=None`` and call :meth:`tick` after
    moving the clock, so the outcome does not depend on thread timing.

    With ``netns=True`` (root on Linux, iproute2) every node lives in its own network namespace behind a host bridge
    in ``subnet`` (node i at host number 11 + i, the bridge at .1 as the gateway), listening on the appliance's real
    ports (SSH 22, Local UI 5080); ``ip`` is then unused. A node's NIC is up only while its OS runs, and a cluster's
    VIP is added to the leader's namespace once the cluster runs, where :meth:`serve_at_vip` servers then listen.
    """

    def __init__(
        self,
        n_nodes: int = 3,
        base_dir: Path | None = None,
        clock: Clock = time.time,
        *,
        ip: str = "127.0.0.1",
        content_sync_delay: float = 5.0,
        login_policy: LoginPolicy | None = None,
        socket_timeout: float = 30.0,
        name_prefix: str = "edge-node",
        cluster_timeline: float = DEFAULT_CLUSTER_TIMELINE,
        upgrade_timeline: float = DEFAULT_UPGRADE_TIMELINE,
        tick_interval: float | None = 1.0,
        installed: bool = True,
        speed: float = 1.0,
        timings: Timings | None = None,
        faults: NodeFaults | Mapping[int, NodeFaults] | None = None,
        log_collect_seconds: float = LOG_COLLECT_SECONDS,
        netns: bool = False,
        subnet: str | None = None,
        appliance: ApplianceProfile | None = None,
        variant: Variant = REFERENCE,
        http_5xx: float = 0.0,
        seed: int = 0,
        media: str = "interactive",
        ports: Sequence[tuple[int, int]] | None = None,
        reuse: bool = False,
    ) -> None:
        """``faults`` applies to every node (one :class:`NodeFaults`) or by node index (a mapping);
        ``log_collect_seconds`` is how long (lab clock) a Local UI log collection takes; ``appliance`` is the release
        every node plays (version and edition; default: the newest, :mod:`wizard.lab.versions`). ``variant`` is which
        plausible appliance the nodes are (:mod:`wizard.lab.variants`); ``http_5xx`` the share of Local UI requests
        answered 500/502/503 before anything is done (:mod:`wizard.lab.httpfaults`), drawn from ``seed``. ``media``
        is what a medium the lab cannot read is taken to boot (``interactive``: the appliance ISO's default entry 2,
        like the product; ``automatic``: entry 0) — a medium it can read boots by its own menu. ``ports`` fixes each
        node's (Local UI, SSH) ports and ``reuse`` keeps the certificates in ``base_dir``: a kept lab started again
        (:mod:`wizard.lab.keep`)."""
        if n_nodes < 1:
            raise ValueError("a lab needs at least one node")
        if media not in MEDIA_CHOICES:
            raise ValueError(f"media must be one of {', '.join(MEDIA_CHOICES)}, not {media!r}")
        self.media = media
        # Without a base_dir the lab keeps its node data in a temporary folder that leaving the context removes.
        self._owns_dir = base_dir is None
        self.base_dir = Path(tempfile.mkdtemp(prefix="palette-lab-")) if base_dir is None else base_dir
        self.clock = clock
        self.registry = LinkRegistry()
        self.timeline = Timeline()  # what the simulated appliances do that the wizard waits for
        self.tick_interval = tick_interval
        self.nodes: list[LabNode] = []
        self._tick_lock = threading.Lock()
        self._started = False
        self._stop_ticker = threading.Event()
        self._ticker: threading.Thread | None = None
        self._vip_services: dict[str, list[BackgroundServer]] = {}
        self.vip_servers: list[BackgroundServer] = []  # what the cluster serves at its VIP (the nodes see these)
        self._vips: set[str] = set()  # cluster VIPs already placed on the network
        self.network: LabNetwork | None = None
        self.appliance = appliance or ApplianceProfile()
        if netns:
            from wizard.lab.netns import DEFAULT_SUBNET, LabNetwork, require_support

            require_support()  # not root, not Linux or no `ip`: say so before anything is made
            self.network = LabNetwork(n_nodes, subnet=subnet or DEFAULT_SUBNET)
        self._make = partial(
            _NodeRecipe,
            clock=clock,
            ip=ip,
            speed=speed,
            timings=timings or Timings(),
            login_policy=login_policy,
            content_sync_delay=content_sync_delay,
            cluster_timeline=cluster_timeline,
            upgrade_timeline=upgrade_timeline,
            variant=variant,
            http_5xx=http_5xx,
            seed=seed,
            socket_timeout=socket_timeout,
            log_collect_seconds=log_collect_seconds,
        )
        self.name_prefix = name_prefix
        try:
            for i in range(n_nodes):
                chosen = faults.get(i) if isinstance(faults, Mapping) else faults
                port_pair = ports[i] if ports is not None and i < len(ports) else None
                self.nodes.append(self._node(i, installed=installed, faults=chosen, ports=port_pair, reuse=reuse))
        except BaseException:
            self._remove_owned_dir()
            raise

    def _node(
        self,
        i: int,
        *,
        installed: bool,
        faults: NodeFaults | None = None,
        ports: tuple[int, int] | None = None,
        reuse: bool = False,
    ) -> LabNode:
        """Node ``i``: its machine, state, certificate, Local UI and SSH servers. ``ports`` (Local UI, SSH) fixes where
        it listens and ``reuse`` takes the certificate its folder holds already (a kept lab started again)."""
        recipe = self._make()
        name = f"{self.name_prefix}-{i + 1}"
        folder = self.base_dir / name
        iface = self.network.nodes[i] if self.network is not None else None
        node_ip = iface.address if iface is not None else recipe.ip
        namespace = iface.namespace if iface is not None else None
        machine = Machine(
            name,
            clock=recipe.clock,
            speed=recipe.speed,
            timings=recipe.timings,
            preinstalled=installed,
            assumed_media=self.media,
        )
        state = NodeState(
            name=name,
            data_dir=folder / "data",
            ip=node_ip,
            clock=recipe.clock,
            login_policy=recipe.login_policy,
            content_sync_delay=recipe.content_sync_delay,
            cluster_timeline=recipe.cluster_timeline,
            facts=machine_facts(machine),
            skew=_skew_of(machine),
            profile=self.appliance,
        )
        state.reboot = machine.reboot  # a user-data change through the Local UI reboots the machine
        machine.timeline = state.timeline = self.timeline
        state.upgrade_timeline = recipe.upgrade_timeline
        state.variant = recipe.variant
        state.http_faults = HttpFaults(recipe.http_5xx, seed=recipe.seed, label=f"localui-{name}")
        if reuse:
            cert = load_or_create_node_certificate(folder / "tls", ip=node_ip, hostname=name)
        else:
            cert = create_node_certificate(folder / "tls", ip=node_ip, hostname=name)
        # The port is fixed up front: a node that is not installed yet still has a known Local UI address.
        if ports is not None:
            state.port = ports[0]
        else:
            state.port = NODE_LOCALUI_PORT if iface is not None else free_port(recipe.ip)
        logs = NodeLogs(state, node_log_sources(machine), collect_seconds=recipe.log_collect_seconds)
        server = LocalUIServer(
            state,
            cert,
            registry=self.registry,
            host=node_ip,
            port=state.port,
            socket_timeout=recipe.socket_timeout,
            logs=logs,
            netns=namespace,
        )
        shell = NodeShell(machine, self._hostname_of(state), {})
        shell.extra["openssl"] = partial(s_client, self.cluster_certificate)
        ssh_port = ports[1] if ports is not None else (NODE_SSH_PORT if iface is not None else 0)
        ssh = LabSSHServer(
            machine,
            load_or_create_host_key(folder / "ssh" / "ssh_host_ecdsa_key"),
            state,
            shell,
            host=node_ip,
            port=ssh_port,
            offline=self._rebooting_for_cluster(state),
        )
        node = LabNode(i, state, cert, server, machine, ssh, logs, namespace)
        if faults is not None:
            node.apply(faults)
        attach_staging(node)  # SFTP and the on-node commands the staging transfer mode uses
        return node

    def add_node(
        self, *, faults: NodeFaults | None = None, ports: tuple[int, int] | None = None, reuse: bool = False
    ) -> LabNode:
        """One more node, not installed yet (a machine the operator racked to add to the appliance), started with
        the lab when it runs; ``ports`` and ``reuse`` as for the constructor (a kept lab's racked node). Loopback
        labs only: a lab on namespaces has its network fixed at creation."""
        if self.network is not None:
            raise RuntimeError("a lab on network namespaces cannot grow")
        node = self._node(len(self.nodes), installed=False, faults=faults, ports=ports, reuse=reuse)
        self.nodes.append(node)
        with self._tick_lock:
            started = self._started
        if started:
            node.ssh.start()
            self.tick()
        return node

    def _hostname_of(self, state: NodeState) -> Callable[[], str]:
        return lambda: state.hostname

    def _rebooting_for_cluster(self, state: NodeState) -> Callable[[], bool]:
        def rebooting() -> bool:
            deployment = state.cluster
            return deployment is not None and deployment.rebooting(self.clock())

        return rebooting

    def start(self) -> Lab:
        try:
            network = self.network
            if network is not None:
                network.up()
            for node in self.nodes:
                # Its own thread follows the machine: it listens only while sshd would run. Started from a thread in
                # the node's namespace, that thread (and every socket it binds) lives there.
                if network is not None:
                    network.run_in(node.index, node.ssh.start)
                else:
                    node.ssh.start()
            with self._tick_lock:
                self._started = True
            self.tick()
            if self.tick_interval is not None and self._ticker is None:
                self._stop_ticker.clear()
                self._ticker = threading.Thread(target=self._tick_loop, name="lab-ticker", daemon=True)
                self._ticker.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._stop_ticker.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        with self._tick_lock:
            self._started = False
            for node in self.nodes:
                node.server.stop()
        for node in self.nodes:
            node.ssh.stop()
        with self._tick_lock:
            services = [s for group in self._vip_services.values() for s in group]
        for service in services:
            service.stop()
        if self.network is not None and self.network.is_up:
            self.network.down()  # after every server: nothing of the lab is left on the machine

    def serve_at_vip(self, server: BackgroundServer) -> None:
        """Serve ``server`` at its ``host``, a cluster VIP, once the cluster holding that VIP runs (before that
        nothing answers at the address, as on a real network): on namespaces in the leader's namespace, where the
        VIP then is. Its port must be fixed (the project names it before it listens). The lab stops it when it
        stops."""
        self.vip_servers.append(server)
        with self._tick_lock:
            self._vip_services.setdefault(server.host, []).append(server)
            placed = server.host in self._vips  # a kept lab's cluster runs already: its VIP is placed
        if placed and not server.running:
            if self.network is not None:
                holder = next(
                    n for n in self.nodes if n.state.cluster is not None and n.state.cluster.vip == server.host
                )
                server.netns = self.node(holder.state.cluster.leader_uid).namespace  # type: ignore[union-attr]
            server.start()
        self.tick()

    def cluster_certificate(self, host: str, port: int) -> str | None:
        """The certificate (PEM) the cluster itself serves at ``host:port`` when that is its VIP and the service
        runs: what a node sees from inside the cluster, whatever a jump host's path to the VIP presents."""
        for server in self.vip_servers:
            certificate = getattr(server, "certificate", None)
            if server.host == host and server.running and server.port == port and certificate is not None:
                return str(certificate.cert_path.read_text(encoding="ascii"))
        return None

    def tick(self) -> None:
        """Apply the clock to the network: a node's Local UI answers only once its installed OS runs the stylus
        services, and a node rebooting for its cluster is unreachable (its listening socket is closed, so
        connections are refused) until the reboot window ends; it then listens again on the same port."""
        with self._tick_lock:
            if not self._started:
                return
            now = self.clock()
            if self.network is not None:
                self._tick_network(self.network, now)
            else:
                self._tick_vips(now)
            for node in self.nodes:
                lab_upgrade.settle(node.state)  # an archive update that has run its course
                deployment = node.state.cluster
                down = (deployment is not None and deployment.rebooting(now)) or not node.machine.local_ui_up
                down = down or network.unreachable(node.state)
                moved = node.server.host != node.state.ip and self.network is None  # its address moved (loopback)
                if (down or moved) and node.server.running:
                    node.server.stop()
                if moved:
                    node.server.host = node.state.ip
                if not down and not node.server.running:
                    node.server.start()

    def _tick_vips(self, now: float) -> None:
        """On loopback every address exists already: a VIP's services start listening once its cluster runs."""
        for node in self.nodes:
            deployment = node.state.cluster
            if deployment is None or not deployment.running(now) or deployment.vip in self._vips:
                continue
            self._vips.add(deployment.vip)
            for service in self._vip_services.get(deployment.vip, []):
                if not service.running:
                    service.start()

    def _tick_network(self, network: LabNetwork, now: float) -> None:
        """A node's NIC answers only while an OS runs on it (a machine that is off or rebooting is silent, not
        refusing); the VIP goes to the leader's namespace once its cluster runs, as kube-vip puts it there."""
        for node in self.nodes:
            network.set_link_up(node.index, node.machine.boot_id is not None)
        for node in self.nodes:
            deployment = node.state.cluster
            if deployment is None or not deployment.running(now) or deployment.vip in self._vips:
                continue
            vip = deployment.vip
            self._vips.add(vip)
            if ipaddress.IPv4Address(vip) not in network.subnet:
                log.warning("lab: VIP %s is outside the lab subnet %s; nothing holds it", vip, network.subnet)
                continue
            leader = self.node(deployment.leader_uid)
            network.add_address(leader.index, vip)
            for service in self._vip_services.get(vip, []):
                if not service.running:
                    service.netns = leader.namespace
                    service.start()

    def _tick_loop(self) -> None:
        assert self.tick_interval is not None
        while not self._stop_ticker.wait(self.tick_interval):
            try:
                self.tick()
            except Exception:  # a failed restart must not end the rehearsal's ticker
                log.exception("lab tick failed")

    def node(self, uid: str) -> LabNode:
        for node in self.nodes:
            if node.state.uid == uid:
                return node
        raise KeyError(uid)

    def __enter__(self) -> Lab:
        try:
            return self.start()
        except BaseException:
            self._remove_owned_dir()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._remove_owned_dir()

    def _remove_owned_dir(self) -> None:
        if self._owns_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
