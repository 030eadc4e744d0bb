"""Configure an installed node through its Local UI: the third way, beside the seed ISO and the guided console.

The wizard PUTs the node's user data (``v1CloudInit``: host name, the default NIC's address, DNS, proxy, CA
certificates) and its configurations (``v1EdgeHostConfigurations``: proxy and CA certificates), then follows
``configurations/status`` until ``Configured`` (``Failed`` stops with the node's own ``errorMessage``). Changed user
data takes effect on the node's next boot (reference §3, "Post-install edit": a reboot of 10–15 minutes), so the
Local UI goes away for a while: the job rides that out and proves the result by the host name
``edgehosts/current`` reports and by reading both documents back.

Choices the public material leaves open, decided here only:

- the NIC is the one the host reports as its default (``networkInfo[].isDefault``), not a guessed ``eth0``;
- ``v1NetworkInterface`` has no mask field, so a static address goes as ``a.b.c.d/prefix`` in ``ipAddress``;
- other user-data keys the node already has (``stages``, ``tags``, ``v1Management``) are sent back unchanged;
  ``registryCredentials`` is left out, because the node masks its password in answers and sending the mask back
  would overwrite the real one.

Idempotent: both documents are read first and only what differs is sent; a node that already has everything (and
reports its host name) is left alone, and one still applying an earlier run's change is only waited for.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wizard.appliance.localui import (
    P_HOST,
    Clock,
    Connector,
    Endpoint,
    LocalUIClient,
    LocalUIError,
    LocalUIServerError,
    LocalUIUnreachable,
)
from wizard.appliance.statuswords import CONFIGURATION, Outcome
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job
from wizard.core.progress import Reporter

if TYPE_CHECKING:
    from wizard.core.project import Node, Project

log = logging.getLogger(__name__)

P_USERDATA = "/v1/edge-mgmt/edgehosts/current/userdata"
P_CONFIGURATIONS = "/v1/edge-mgmt/edgehosts/current/configurations"
P_CONFIGURATIONS_STATUS = "/v1/edge-mgmt/edgehosts/current/configurations/status"

# v1EdgeHostConfigurationStatus.state, as the spec spells it; a node's own spelling is read through CONFIGURATION.
NOT_CONFIGURED, IN_PROGRESS, CONFIGURED, FAILED = "Not Configured", "In Progress", "Configured", "Failed"
#: User-data keys sent back as the node has them (see the module docstring for registryCredentials).
KEPT_KEYS = ("stages", "tags", "v1Management")
PROXY_KEYS = ("httpProxy", "httpsProxy", "noProxy")


@dataclass(frozen=True)
class NodeConfiguration:
    """What one node should be configured with; plain values."""

    hostname: str
    address: str = ""  # empty: DHCP
    prefix: int | None = None
    gateway: str = ""
    dns: tuple[str, ...] = ()
    http_proxy: str = ""
    https_proxy: str = ""
    no_proxy: tuple[str, ...] = ()
    ca_certs: tuple[str, ...] = ()  # PEM blocks
    #: The node's addressing is the network step's (bonds, VLANs, a management interface): leave the NIC as it is.
    keep_interface: bool = False

    def interface(self) -> dict[str, Any]:
        """The ``v1NetworkInterface`` for the node's default NIC."""
        if not self.address:
            iface: dict[str, Any] = {"type": "dhcp"}
        else:
            if self.prefix is None:
                raise ValueError("a static address needs its prefix")
            iface = {"type": "static", "ipAddress": str(ipaddress.IPv4Interface(f"{self.address}/{self.prefix}"))}
            if self.gateway:
                iface["gateway"] = self.gateway
        if self.dns:
            iface["nameserver"] = list(self.dns)
        return iface

    def configurations(self) -> dict[str, Any]:
        """The ``v1EdgeHostConfigurations`` body: every field, so a proxy removed from the project is cleared."""
        return {
            "httpProxy": self.http_proxy,
            "httpsProxy": self.https_proxy,
            "noProxy": ",".join(self.no_proxy),
            "caCerts": list(self.ca_certs),
        }

    def user_data(self, nic: str, current: Mapping[str, Any]) -> dict[str, Any]:
        """The ``v1CloudInit`` body: ours over what the node keeps (other NICs and the kept keys included)."""
        interfaces = dict(((current.get("network") or {}).get("interfaces")) or {})
        if not self.keep_interface:
            interfaces[nic] = self.interface()
        network: dict[str, Any] = {"interfaces": interfaces, **self.configurations()}
        if not self.ca_certs:
            del network["caCerts"]  # x-omitempty in the spec
        body: dict[str, Any] = {"hostName": self.hostname, "network": network}
        body.update({k: current[k] for k in KEPT_KEYS if current.get(k) is not None})
        return body


def configuration_for_node(project: Project, node: Node, ca_certs: tuple[str, ...] = ()) -> NodeConfiguration:
    """``node``'s configuration from the project (its host name and address, the network's DNS and proxy)."""
    from wizard.core.project import AddressMode

    static = node.address_mode is AddressMode.STATIC
    net = project.network
    return NodeConfiguration(
        hostname=node.hostname or node.name,
        address=node.ip if static else "",
        prefix=node.prefix if static else None,
        gateway=node.gateway if static else "",
        dns=net.dns,
        http_proxy=net.proxy.http,
        https_proxy=net.proxy.https,
        no_proxy=net.proxy.no_proxy,
        ca_certs=ca_certs,
        keep_interface=node.network is not None and node.network.needs_network_api,
    )


def _norm_configurations(data: Mapping[str, Any]) -> dict[str, Any]:
    """Missing and empty are the same to a node (``x-omitempty``); certificates compare without outer blanks."""
    out: dict[str, Any] = {k: str(data.get(k) or "") for k in PROXY_KEYS}
    out["caCerts"] = [str(c).strip() for c in data.get("caCerts") or []]
    return out


def _norm_user_data(data: Mapping[str, Any], nic: str) -> dict[str, Any]:
    network = data.get("network") or {}
    iface = dict(((network.get("interfaces") or {}).get(nic)) or {})
    if iface.get("type") == "static" and iface.get("ipAddress"):
        with contextlib.suppress(ValueError):  # else compared as written: it differs from ours, so ours is sent
            iface["ipAddress"] = str(ipaddress.IPv4Interface(str(iface["ipAddress"])))
    iface["nameserver"] = list(iface.get("nameserver") or [])
    return {"hostName": str(data.get("hostName") or ""), "iface": iface, **_norm_configurations(network)}


class ConfigureNodeJob(Job):
    """Give one installed node its host name, address, proxy and CA certificates through its Local UI."""

    weight = 1.0

    def __init__(
        self,
        endpoint: Endpoint,
        config: NodeConfiguration,
        connector: Connector,
        *,
        step: str = "configure",
        poll_interval: float = 10.0,
        timeout: float = 30 * 60.0,
        clock: Clock = time.time,
    ) -> None:
        """``timeout``: how long the node may take to apply the change, its reboot included."""
        self.endpoint = endpoint
        self.config = config
        self.connector = connector
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.clock = clock
        self.id = f"{step}/{endpoint.name}"
        self.name = endpoint.name
        self.node = endpoint.name

    def fingerprint(self) -> str:
        # What the node is to become: a changed project setting makes the job run again.
        text = json.dumps([self.endpoint.where, self.config.__dict__], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        ep, cfg = self.endpoint, self.config
        report.update(0.02, f"reading {ep.name}'s configuration")
        with self.connector.open(ep, cancel) as client:
            nic = self._default_nic(client)
            current_ud = self._get(client, P_USERDATA)
            current_cfg = self._get(client, P_CONFIGURATIONS)
            state, error = self._status(client)
            wanted_ud = cfg.user_data(nic, current_ud)
            wanted_cfg = cfg.configurations()
            send_ud = _norm_user_data(current_ud, nic) != _norm_user_data(wanted_ud, nic)
            send_cfg = _norm_configurations(current_cfg) != _norm_configurations(wanted_cfg)
            if not send_ud and not send_cfg:
                if state == FAILED:
                    # The node holds our values but could not apply them: send them again rather than skip.
                    log.info("%s: an earlier configuration failed (%s); applying it again", ep.name, error)
                    send_ud = True
                elif state != IN_PROGRESS:
                    if client.host_info().name == cfg.hostname:
                        report.finish(f"{ep.name} is already configured as {cfg.hostname}")
                        return {"changed": False, "hostname": cfg.hostname, "nic": nic}
                    send_ud = True  # stored but not in effect (the host reports another name): apply it again
            cancel.raise_if_cancelled()
            # Configurations first: the user data makes the node reboot, after which nothing more is sent.
            if send_cfg:
                report.update(0.1, "setting the proxy and CA certificates")
                self._put(client, P_CONFIGURATIONS, wanted_cfg, "configurations")
            if send_ud:
                report.update(0.15, f"setting host name {cfg.hostname} and {nic}'s address")
                self._put(client, P_USERDATA, wanted_ud, "user data", nic)
            log.info("%s: configuration sent (user data: %s, configurations: %s)", ep.name, send_ud, send_cfg)
            outage = self._wait(
                client,
                wanted_ud=wanted_ud if send_ud else {},
                wanted_cfg=wanted_cfg,
                nic=nic,
                report=report,
                cancel=cancel,
                before=state,
            )
        report.finish(f"{ep.name} configured as {cfg.hostname}" + (" (rebooted)" if outage else ""))
        return {
            "changed": True,
            "hostname": cfg.hostname,
            "nic": nic,
            "user_data_sent": send_ud,
            "configurations_sent": send_cfg,
            "rebooted": outage,
        }

    # -- requests --

    def _get(self, client: LocalUIClient, path: str) -> dict[str, Any]:
        return client.get_json(path) or {}

    def _default_nic(self, client: LocalUIClient) -> str:
        nics = (self._get(client, P_HOST).get("spec") or {}).get("networkInfo") or []
        default = next((n for n in nics if n.get("isDefault")), nics[0] if nics else None)
        if not default or not default.get("nicName"):
            raise WizardError(
                "No network interface",
                f"{self.endpoint.name} reports no network interface to configure",
                remediation="check the node's network in its Local UI (Configure → Network)",
            )
        return str(default["nicName"])

    def _status(self, client: LocalUIClient) -> tuple[str, str]:
        """The state in the spec's spelling (whatever the node wrote: ``InProgress``, ``configured``…; a word no
        reading knows is kept as written and waited on) and the node's error message."""
        data = self._get(client, P_CONFIGURATIONS_STATUS)
        raw = str(data.get("state") or "")
        outcome = CONFIGURATION.classify(raw)
        state = {Outcome.DONE: CONFIGURED, Outcome.FAILED: FAILED, Outcome.RUNNING: IN_PROGRESS}.get(outcome, raw)
        return state, str(data.get("errorMessage") or "")

    def _put(self, client: LocalUIClient, path: str, body: Mapping[str, Any], what: str, nic: str = "") -> None:
        def send() -> bool:
            # User data is not idempotent on a node (a second PUT while the first applies is refused): never resent
            # before the node says it does not hold it. Configurations are, and the retry policy resends them.
            client.request("PUT", path, json=body, ok=(200, 201, 202, 204), idempotent=path != P_USERDATA)
            return True

        def held() -> bool | None:
            try:
                current = self._get(client, path)
            except LocalUIUnreachable:
                return True  # gone to reboot: it took the user data (the wait below proves what it applied)
            if path == P_USERDATA:
                return True if _norm_user_data(current, nic) == _norm_user_data(body, nic) else None
            return True if _norm_configurations(current) == _norm_configurations(body) else None

        try:
            client.settle(send, held, f"set the {what}")
        except LocalUIError as exc:
            if isinstance(exc, LocalUIUnreachable):
                raise
            raise LocalUIError(
                f"Node refused its {what}",
                f"{self.endpoint.name} refused the {what}: {exc.message}",
                status=exc.status,
                code=exc.code,
                remediation="correct the node's settings in the project (host name, address, gateway, proxy), "
                "then retry",
            ) from exc

    # -- waiting --

    def _wait(
        self,
        client: LocalUIClient,
        *,
        wanted_ud: Mapping[str, Any],
        wanted_cfg: Mapping[str, Any],
        nic: str,
        report: Reporter,
        cancel: CancelToken,
        before: str,
    ) -> bool:
        """Until the node reports Configured with our values and host name; returns whether it went away (its
        reboot) meanwhile. Failed is an error with the node's message; so is running out of time."""
        ep = self.endpoint
        start = self.clock()
        outage = False
        # A user-data change reports In Progress (or takes the node away) before it is Configured: an earlier
        # Configured state must not pass for this change's.
        started = not wanted_ud or before == IN_PROGRESS
        wanted_ud = wanted_ud or self._get(client, P_USERDATA)
        while True:
            cancel.sleep(self.poll_interval)
            elapsed = self.clock() - start
            fraction = 0.2 + 0.75 * min(elapsed / self.timeout, 0.99)
            try:
                state, error = self._status(client)
                proven = state == CONFIGURED and self._proven(client, wanted_ud, wanted_cfg, nic)
            except (LocalUIUnreachable, LocalUIServerError) as exc:
                # Expected: the node reboots to apply its user data and its Local UI is gone meanwhile.
                outage = True
                report.update(fraction, f"{ep.name} is rebooting to apply its configuration")
                log.debug("%s: not answering while it applies its configuration: %s", ep.name, exc.message)
                self._check_time(elapsed, "its Local UI has not answered again")
                continue  # polled at the same interval: the node coming back is seen within it
            started = started or outage or state == IN_PROGRESS
            if state == FAILED:
                raise WizardError(
                    "Node configuration failed",
                    f"{ep.name} could not apply its configuration: {error or 'the node gave no reason'}",
                    remediation="fix the cause the node names (see its logs in the Local UI), then retry",
                )
            if proven and started:
                return outage
            report.update(fraction, f"{ep.name}: {state or 'waiting'}")
            self._check_time(elapsed, f"it still reports {state or 'no state'}")

    def _check_time(self, elapsed: float, why: str) -> None:
        if elapsed > self.timeout:
            raise WizardError(
                "Node configuration too slow",
                f"{self.endpoint.name} is not configured after {int(elapsed // 60)} min: {why}",
                remediation="check the node's console (did it reboot and come back?), then retry",
            )

    def _proven(
        self, client: LocalUIClient, wanted_ud: Mapping[str, Any], wanted_cfg: Mapping[str, Any], nic: str
    ) -> bool:
        """The node answers with our host name and both documents as we sent them."""
        if client.host_info().name != self.config.hostname:
            return False
        if _norm_user_data(self._get(client, P_USERDATA), nic) != _norm_user_data(wanted_ud, nic):
            return False
        return _norm_configurations(self._get(client, P_CONFIGURATIONS)) == _norm_configurations(wanted_cfg)
