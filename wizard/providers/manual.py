"""The ``manual`` provider: the operator boots each node from the ISO by hand (USB stick, KVM, virtual console).

The wizard cannot press the power button, so it says exactly what to do for each node and then watches the node's
address until it comes up: the live installer answers on SSH, the installed system on SSH and the Local UI. Either
port accepting a connection means the node is up; the install step then follows the install itself.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job
from wizard.core.progress import Reporter


@dataclass(frozen=True)
class ManualPacing:
    interval: float = 5.0  # between connection attempts
    connect_timeout: float = 3.0
    remind_every: float = 5 * 60.0  # a warning on the node's row while it stays silent
    timeout: float = 60 * 60.0  # then the job fails with what was tried; a rerun starts waiting again


#: The boot menu entry the appliance ISO starts by itself (the appliance docs, "Boot" step 3).
BOOT_ENTRY = "Palette Edge Interactive Installer"


def instruction(node: str, hostname: str, address: str, iso_name: str) -> str:
    where = f"at {address}" if address else "(address from DHCP)"
    return (
        f"Boot {node} ({hostname}) from {iso_name}: attach the ISO (USB stick, KVM or virtual media), make it the "
        f"one-time boot device in UEFI mode and power the machine on; its boot menu starts “{BOOT_ENTRY}” by itself. "
        f"The wizard watches {where} and carries on by itself once the node answers."
    )


def seed_instruction(seed: str) -> str:
    return (
        f" Attach its seed ISO {seed} as a second CD/DVD drive (or a USB stick) before powering on: it answers the "
        "installer and sets the node's host name, network and account, so nothing needs typing on its console."
    )


def console_instruction(
    hostname: str,
    *,
    username: str,
    address: str = "",
    prefix: int | None = None,
    gateway: str = "",
    dns: tuple[str, ...] = (),
    search: tuple[str, ...] = (),
) -> str:
    """What to type in the node's Palette TUI after the install (reference §3), field by field."""
    if address and prefix is not None:
        import ipaddress

        mask = str(ipaddress.IPv4Network(f"0.0.0.0/{prefix}").netmask)
        net = f"Network Adapter: Static IP, IP {address}, mask {mask}, gateway {gateway or '(none)'}"
    else:
        net = "Network Adapter: DHCP"
    steps = [
        "press F2 to customise",
        f"User Login (or Create User): username {username!r}, password 'kairos' (the wizard replaces it with yours "
        "right after, through the Local UI)",
        f"Hostname: {hostname}",
        net,
    ]
    if dns:
        steps.append(
            "DNS Configuration: primary "
            + dns[0]
            + (f", alternate {dns[1]}" if len(dns) > 1 else "")
            + (f", search domain {search[0]}" if search else "")
        )
    steps.append("Quit, ENTER, confirm")
    return "On the node's console (Palette TUI): " + "; ".join(f"{i}. {t}" for i, t in enumerate(steps, 1)) + "."


def port_open(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ManualBootJob(Job):
    """Shows the operator what to do for one node and waits until it answers on SSH or the Local UI."""

    weight = 1.0

    def __init__(
        self,
        node: str,
        hostname: str,
        address: str,
        *,
        ports: tuple[int, ...],
        iso_name: str,
        pacing: ManualPacing | None = None,
        probe: Callable[[str, int, float], bool] = port_open,
        step: str = "boot",
        how: str = "",
        seed: str = "",
        console: str = "",
    ) -> None:
        self.id = f"{step}/{node}"
        self.name = node
        self.node = node
        self.hostname = hostname
        self.address = address
        self.ports = ports
        self.iso_name = iso_name
        self.pacing = pacing or ManualPacing()
        self.probe = probe
        #: What to do, when the provider knows better than the generic text (MAAS: per power type).
        self.how = how
        self.seed = seed  # the node's seed ISO to attach beside the appliance ISO ("" when none)
        self.console = console  # what to do at GRUB's menu ("" when the ISO boots the installer by itself)

    def text(self) -> str:
        extra = seed_instruction(self.seed) if self.seed else ""
        if self.console:
            extra += f" At its console, {self.console}."
        if not self.how:
            return instruction(self.node, self.hostname, self.address, self.iso_name) + extra
        where = f"at {self.address}" if self.address else "(address from DHCP)"
        return f"{self.how}{extra} The wizard watches {where} and carries on by itself once the node answers."

    def fingerprint(self) -> str:
        return f"manual|{self.address}|{','.join(map(str, self.ports))}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        text = self.text()
        report.update(0.0, text)
        started = time.monotonic()
        reminded = started
        attempts = 0
        while True:
            cancel.raise_if_cancelled()
            attempts += 1
            for port in self.ports:
                if self.probe(self.address, port, self.pacing.connect_timeout):
                    waited = time.monotonic() - started
                    report.finish(f"{self.node} answers on port {port}")
                    return {"port": port, "waited_seconds": round(waited, 1), "booted_by": "operator"}
            now = time.monotonic()
            if now - started >= self.pacing.timeout:
                ports = " or ".join(str(p) for p in self.ports)
                raise WizardError(
                    f"{self.node} did not come up",
                    f"nothing answered on {self.address} port {ports} in {int(self.pacing.timeout // 60)} minutes "
                    f"({attempts} attempts)",
                    remediation=(
                        "check on the node's console that it booted the ISO and got this address (for DHCP, the "
                        "reservation), then run again: the wizard picks up where it stopped"
                    ),
                )
            if now - reminded >= self.pacing.remind_every:
                reminded = now
                report.warn(f"still waiting for {self.node} after {int((now - started) // 60)} min — {text}")
            cancel.sleep(self.pacing.interval)


class ConsoleConfigJob(Job):
    """The guided console step for one node whose settings no seed brought: shows exactly what to type in its
    Palette TUI and waits until the node answers SSH with the expected host name (the TUI's last step applies it).

    ``hostname_of`` logs in and returns the node's host name; it raises (any :class:`WizardError`) while the node
    is not reachable or the account is not set up yet, which simply means "not done yet". Facts: ``hostname``,
    ``waited_seconds``."""

    weight = 1.0

    def __init__(
        self,
        node: str,
        hostname: str,
        text: str,
        hostname_of: Callable[[], str],
        *,
        pacing: ManualPacing | None = None,
        step: str = "install",
    ) -> None:
        self.id = f"{step}/{node}/console"
        self.name = f"{node}: console settings"
        self.node = node
        self.hostname = hostname
        self.text = text
        self.hostname_of = hostname_of
        self.pacing = pacing or ManualPacing()

    def fingerprint(self) -> str:
        return f"console|{self.node}|{self.hostname}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        report.update(0.0, self.text)
        started = time.monotonic()
        reminded = started
        last = ""
        while True:
            cancel.raise_if_cancelled()
            try:
                last = self.hostname_of().strip()
            except WizardError as exc:
                last = f"({exc.title.lower()})"
            if last.split(".")[0] == self.hostname.split(".")[0]:
                report.finish(f"{self.node} is configured: host name {last}")
                return {"hostname": last, "waited_seconds": round(time.monotonic() - started, 1)}
            now = time.monotonic()
            if now - started >= self.pacing.timeout:
                raise WizardError(
                    f"{self.node} not configured",
                    f"{self.node} still answers with host name {last or '(nothing)'}, not {self.hostname}, after "
                    f"{int(self.pacing.timeout // 60)} minutes",
                    remediation=self.text + " Then run again: the wizard picks up where it stopped.",
                )
            if now - reminded >= self.pacing.remind_every:
                reminded = now
                report.warn(f"{self.node} not configured yet (host name {last or 'unknown'}) — {self.text}")
            cancel.sleep(self.pacing.interval)
