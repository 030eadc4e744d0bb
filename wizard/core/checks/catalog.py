"""The preflight check catalog: what each check is, how bad a failure is, and which wizard page fixes it.

Ids are stable (they are recorded in journals and reports, and overrides refer to them); change a title or a
remediation freely, never an id.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    JUMP_HOST = "jump-host"
    FILES = "files"
    NETWORK = "network"
    PROVIDER = "provider"
    NODE = "node"


class CheckSeverity(StrEnum):
    """A failed blocker stops the install; a failed warning is shown and may be overridden with a reason."""

    BLOCKER = "blocker"
    WARNING = "warning"


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    FAIL = "fail"
    ERROR = "error"  # the check could not run; it counts as a failure, since nothing was proven


@dataclass(frozen=True)
class Check:
    id: str
    category: Category
    severity: CheckSeverity
    title: str
    remediation: str
    #: The wizard page that fixes a failure: project, network, files, nodes or provider.
    step: str


@dataclass(frozen=True)
class CheckResult:
    """One check applied to one target (a node, a server, a file)."""

    check: str
    outcome: Outcome
    message: str
    target: str = ""
    remediation: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    #: How the check looked, including what it could not do here ("ARP not possible: arping not installed").
    method: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.outcome is not Outcome.PASS

    @property
    def definition(self) -> Check:
        return CATALOG[self.check]

    def to_dict(self) -> dict[str, Any]:
        c = self.definition
        return {
            "check": self.check,
            "title": c.title,
            "category": c.category.value,
            "severity": c.severity.value,
            "step": c.step,
            "target": self.target,
            "outcome": self.outcome.value,
            "message": self.message,
            "remediation": self.remediation or (c.remediation if self.failed else ""),
            "details": self.details,
            "method": list(self.method),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(
            check=str(data["check"]),
            outcome=Outcome(data["outcome"]),
            message=str(data.get("message", "")),
            target=str(data.get("target", "")),
            remediation=str(data.get("remediation", "")),
            details=dict(data.get("details") or {}),
            method=tuple(str(m) for m in data.get("method") or ()),
        )


def passed(check: str, message: str, target: str = "", **kw: Any) -> CheckResult:
    return CheckResult(check, Outcome.PASS, message, target, **kw)


def failed(check: str, message: str, target: str = "", **kw: Any) -> CheckResult:
    return CheckResult(check, Outcome.FAIL, message, target, **kw)


def errored(check: str, message: str, target: str = "", **kw: Any) -> CheckResult:
    return CheckResult(check, Outcome.ERROR, message, target, **kw)


def not_applicable(check: str, why: str, target: str = "") -> CheckResult:
    """A check that needs facts the project does not have passes with a note rather than failing."""
    return CheckResult(check, Outcome.PASS, f"skipped: not applicable ({why})", target, details={"skipped": True})


_B, _W = CheckSeverity.BLOCKER, CheckSeverity.WARNING
_CHECKS = (
    Check(
        "host.free-space",
        Category.JUMP_HOST,
        _B,
        "Free space on the jump host",
        "free space on that file system, or point PALETTE_WIZARD_HOME at a larger disk",
        "project",
    ),
    Check(
        "files.verified",
        Category.FILES,
        _B,
        "Files verified",
        "run the Verify files step; a file that fails it must be downloaded again",
        "files",
    ),
    Check(
        "files.signed",
        Category.FILES,
        _W,
        "Files signature-checked",
        "add the file's .sig and Spectro Cloud's public key so its signature is verified",
        "files",
    ),
    Check(
        "files.iso-format",
        Category.FILES,
        _B,
        "ISO is an ISO 9660 image",
        "choose the appliance ISO downloaded from Spectro Cloud; this file is not an ISO image",
        "files",
    ),
    Check(
        "files.iso-uefi",
        Category.FILES,
        _B,
        "ISO boots with UEFI",
        "use the appliance ISO: it carries an EFI El Torito boot entry, this image does not",
        "files",
    ),
    Check(
        "files.iso-label",
        Category.FILES,
        _W,
        "ISO looks like the appliance ISO",
        "make sure this is the Palette appliance ISO and not another bootable image",
        "files",
    ),
    Check(
        "net.node-ip-free",
        Category.NETWORK,
        _B,
        "Node address not in use (or the node itself)",
        "give the node an address nothing else uses, or switch off the machine that has it; nodes that run "
        "already (manual provider, existing VMs) pass when they answer as themselves: pin their SSH host key or "
        "Local UI fingerprint on the Nodes page to tell them apart",
        "nodes",
    ),
    Check(
        "net.vip-free",
        Category.NETWORK,
        _B,
        "VIP not in use (or this install's cluster)",
        "choose a virtual IP that no machine uses yet; the cluster claims it during the install",
        "network",
    ),
    Check(
        "net.dns-server",
        Category.NETWORK,
        _B,
        "DNS server answers",
        "correct the DNS server address, or allow DNS (UDP 53) from this network",
        "network",
    ),
    Check(
        "net.dns-forward",
        Category.NETWORK,
        _W,
        "Host name resolves to the node",
        "add or fix the A record so the host name points at the node's address",
        "nodes",
    ),
    Check(
        "net.dns-reverse",
        Category.NETWORK,
        _W,
        "Node address resolves back to its name",
        "add or fix the PTR record for the node's address",
        "nodes",
    ),
    Check(
        "net.ntp-reachable",
        Category.NETWORK,
        _B,
        "An NTP server answers",
        "correct the NTP servers or allow NTP (UDP 123); without time sync, clock skew logs users out of Palette",
        "network",
    ),
    Check(
        "net.ntp-server",
        Category.NETWORK,
        _W,
        "Each NTP server answers",
        "remove or correct the NTP server that does not answer",
        "network",
    ),
    Check(
        "net.ntp-offset",
        Category.NETWORK,
        _B,
        "Clock offset is small",
        "fix the time on the NTP server or the jump host; clock skew logs users out of Palette",
        "network",
    ),
)

#: Modules that define checks next to the code that runs them (providers, gateway, post-boot, ports), each as a
#: ``CHECKS`` tuple.
CHECK_MODULES = (
    "wizard.providers.vsphere.checks",
    "wizard.providers.redfish.checks",
    "wizard.providers.maas",
    "wizard.core.checks.gateway",
    "wizard.install.checks.postboot",
    "wizard.core.checks.ports",
)


class _Catalog(Mapping[str, Check]):
    """Every check by id. The provider modules are imported on first use: they import this module themselves."""

    def __init__(self, own: tuple[Check, ...]) -> None:
        self._own = own
        self._all: dict[str, Check] | None = None
        self._lock = threading.Lock()

    def _checks(self) -> dict[str, Check]:
        with self._lock:
            if self._all is None:
                merged = {c.id: c for c in self._own}
                for name in CHECK_MODULES:
                    try:
                        module = importlib.import_module(name)
                    except ModuleNotFoundError as exc:
                        if exc.name != name:  # a provider that exists but fails to import is a bug: say so
                            raise
                        continue
                    for check in module.CHECKS:
                        if check.id in merged:
                            raise ValueError(f"check id {check.id!r} is defined twice")
                        merged[check.id] = check
                self._all = merged
            return self._all

    def __getitem__(self, key: str) -> Check:
        return self._checks()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._checks())

    def __len__(self) -> int:
        return len(self._checks())


CATALOG: Mapping[str, Check] = _Catalog(_CHECKS)
