"""Preflight checks of a node's BMC: nothing is changed, only read.

:data:`CHECKS` holds the catalog entries (merged into :mod:`wizard.core.checks.catalog`); :func:`run_checks` applies
them to one node and returns one result per check, in catalog order.
"""

from __future__ import annotations

import httpx

from wizard.core.checks.catalog import (
    Category,
    Check,
    CheckResult,
    CheckSeverity,
    errored,
    failed,
    not_applicable,
    passed,
)
from wizard.core.errors import WizardError
from wizard.core.project import Bmc
from wizard.core.trust import Confirm, TrustStore
from wizard.providers.redfish.client import Inventory, RedfishClient, VirtualMedia
from wizard.providers.redfish.errors import AuthRefused, NoCdMedia
from wizard.providers.redfish.quirks import GENERIC, QUIRKS, VendorQuirks
from wizard.providers.redfish.session import DEFAULT_TIMEOUT

MIN_CPUS = 8
MIN_MEMORY_GB = 16
#: Firmware reports installed memory less what it reserves; 16 GB of DIMMs may show as 15.x GiB.
MEMORY_TOLERANCE = 0.95

_B, _W = CheckSeverity.BLOCKER, CheckSeverity.WARNING
CHECKS: tuple[Check, ...] = (
    Check(
        "redfish.reachable",
        Category.PROVIDER,
        _B,
        "BMC reachable over Redfish with the given credentials",
        "check the BMC address, user name and keyring password, and that this machine can reach the BMC",
        "provider",
    ),
    Check(
        "redfish.virtual-media",
        Category.PROVIDER,
        _B,
        "BMC offers CD virtual media",
        "enable (or license) virtual media on the BMC, or boot this node by hand (manual mode)",
        "provider",
    ),
    Check(
        "redfish.uefi",
        Category.PROVIDER,
        _B,
        "Server boots in UEFI mode",
        "switch the server's boot mode to UEFI in its BIOS setup",
        "provider",
    ),
    Check(
        "redfish.secure-boot",
        Category.PROVIDER,
        _W,
        "Secure Boot is off",
        "turn Secure Boot off in the server's BIOS setup, or confirm the appliance ISO boots with it on",
        "provider",
    ),
    Check(
        "redfish.resources",
        Category.PROVIDER,
        _B,
        f"At least {MIN_CPUS} vCPU and {MIN_MEMORY_GB} GB of memory",
        f"use a server with at least {MIN_CPUS} logical CPUs and {MIN_MEMORY_GB} GB of memory",
        "provider",
    ),
)


def inventory(
    bmc: Bmc,
    password: str,
    *,
    trust: TrustStore,
    confirm: Confirm | None,
    timeout: float = DEFAULT_TIMEOUT,
    transport: httpx.BaseTransport | None = None,
) -> tuple[Inventory, VirtualMedia | None]:
    """What the BMC reports about its System (and its CD media, None when it has none). Raises WizardError.

    ``transport`` replaces the network with a BMC model (tests)."""
    client = RedfishClient.for_bmc(bmc, password, trust=trust, confirm=confirm, timeout=timeout, transport=transport)
    with client:
        system_path, system = client.find_system()
        inv = client.inventory(system_path, system)
        media: VirtualMedia | None
        try:
            media = client.find_cd_media(system)
        except NoCdMedia:
            media = None
        return inv, media


def run_checks(
    node: str,
    bmc: Bmc,
    password: str,
    *,
    trust: TrustStore,
    confirm: Confirm | None,
    timeout: float = DEFAULT_TIMEOUT,
    min_cpus: int = MIN_CPUS,
    min_memory_gb: int = MIN_MEMORY_GB,
    transport: httpx.BaseTransport | None = None,
) -> list[CheckResult]:
    """One result per entry of :data:`CHECKS` for ``node``; a BMC that cannot be reached fails the first and
    leaves the others unproven (errored)."""
    try:
        inv, media = inventory(bmc, password, trust=trust, confirm=confirm, timeout=timeout, transport=transport)
    except WizardError as exc:
        why = f"not checked: the BMC could not be used ({exc.title})"
        login = isinstance(exc, AuthRefused)
        return [
            failed(
                "redfish.reachable",
                exc.message,
                node,
                remediation=(
                    "check the BMC user on the Nodes page and enter the BMC password again on the Credentials page"
                    if login
                    else exc.remediation
                ),
                details={"error": exc.title},
                fix_step="credentials" if login else "",
            ),
            *(errored(c.id, why, node) for c in CHECKS[1:]),
        ]
    results = [
        passed(
            "redfish.reachable",
            f"{inv.name or inv.system} ({' '.join(filter(None, (inv.manufacturer, inv.model))) or 'unknown model'})",
            node,
            details={"system": inv.system, "power_state": inv.power_state, "quirks": inv.quirks},
        )
    ]
    if media is None:
        results.append(failed("redfish.virtual-media", "the BMC has no CD/DVD virtual media", node))
    elif media.insert_target:
        types = ", ".join(media.media_types) or "no MediaTypes"
        results.append(passed("redfish.virtual-media", f"{media.id} ({types})", node, details={"path": media.path}))
    elif _quirks(inv.quirks).insert_via_patch:
        results.append(
            passed(
                "redfish.virtual-media",
                f"{media.id} takes CD images by PATCH (this firmware has no InsertMedia action)",
                node,
                details={"path": media.path},
            )
        )
    else:
        results.append(failed("redfish.virtual-media", f"{media.id} offers no InsertMedia action", node))
    if inv.boot_mode == "UEFI":
        results.append(passed("redfish.uefi", "boot mode UEFI", node))
    elif inv.boot_mode:
        results.append(failed("redfish.uefi", f"boot mode {inv.boot_mode}; the appliance ISO boots only in UEFI", node))
    else:
        results.append(not_applicable("redfish.uefi", "the BMC does not report the boot mode", node))
    if inv.secure_boot is None:
        results.append(not_applicable("redfish.secure-boot", "the BMC does not report Secure Boot", node))
    elif inv.secure_boot:
        results.append(failed("redfish.secure-boot", "Secure Boot is on", node))
    else:
        results.append(passed("redfish.secure-boot", "Secure Boot is off", node))
    results.append(_resources(node, inv, min_cpus, min_memory_gb))
    return results


def _resources(node: str, inv: Inventory, min_cpus: int, min_memory_gb: int) -> CheckResult:
    short: list[str] = []
    seen: list[str] = []
    if inv.cpus is not None:
        seen.append(f"{inv.cpus} CPUs ({inv.cpu_field})")
        if inv.cpus < min_cpus:
            short.append(f"{inv.cpus} CPUs < {min_cpus}")
    if inv.memory_gib is not None:
        seen.append(f"{inv.memory_gib:g} GiB")
        if inv.memory_gib < min_memory_gb * MEMORY_TOLERANCE:
            short.append(f"{inv.memory_gib:g} GiB memory < {min_memory_gb} GB")
    details = {"cpus": inv.cpus, "memory_gib": inv.memory_gib}
    if short:
        return failed("redfish.resources", "; ".join(short), node, details=details)
    if not seen:
        return not_applicable("redfish.resources", "the BMC reports neither CPU nor memory totals", node)
    unknown = "" if len(seen) == 2 else " (the other is not reported)"
    return passed("redfish.resources", ", ".join(seen) + unknown, node, details=details)


def _quirks(name: str) -> VendorQuirks:
    return next((q for q in QUIRKS if q.name == name), GENERIC)
