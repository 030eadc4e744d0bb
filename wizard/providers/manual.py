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


def instruction(node: str, hostname: str, address: str, iso_name: str) -> str:
    where = f"at {address}" if address else "(address from DHCP)"
    return (
        f"Boot {node} ({hostname}) from {iso_name}: attach the ISO (USB stick, KVM or virtual media), make it the "
        f"one-time boot device in UEFI mode and power the machine on. The wizard watches {where} and carries on by "
        f"itself once the node answers."
    )


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

    def text(self) -> str:
        if not self.how:
            return instruction(self.node, self.hostname, self.address, self.iso_name)
        where = f"at {self.address}" if self.address else "(address from DHCP)"
        return f"{self.how} The wizard watches {where} and carries on by itself once the node answers."

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
