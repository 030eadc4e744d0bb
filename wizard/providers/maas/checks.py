"""The MAAS preflight checks: reachable with the key, each machine usable, its power type and size."""

from __future__ import annotations

import ssl
from collections.abc import Sequence

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
from wizard.providers.maas.client import MIN_CPUS, MIN_MEMORY_MIB, MaasClient, MaasUser, Machine
from wizard.providers.maas.machines import ManualInstruction, boot_route, machine_problem

_B, _W = CheckSeverity.BLOCKER, CheckSeverity.WARNING
CHECKS: tuple[Check, ...] = (
    Check(
        "maas.reachable",
        Category.PROVIDER,
        _B,
        "MAAS answers and accepts the API key",
        "check the MAAS URL (http://HOST:5240/MAAS) and the API key stored in the keyring",
        "provider",
    ),
    Check(
        "maas.machines",
        Category.PROVIDER,
        _B,
        "Each MAAS machine exists and is Ready (or allocated to you)",
        "pick machines that are Ready in MAAS, or release/commission/fix the one named",
        "provider",
    ),
    Check(
        "maas.power-type",
        Category.PROVIDER,
        _W,
        "MAAS can boot the machine through Redfish",
        "set the machine's power type to Redfish in MAAS (with an admin API key), or boot it by hand when asked",
        "provider",
    ),
    Check(
        "maas.resources",
        Category.PROVIDER,
        _B,
        f"Machine has at least {MIN_CPUS} CPUs and {MIN_MEMORY_MIB // 1024} GiB of memory",
        "choose a machine that meets the appliance's minimum size",
        "provider",
    ),
)


def run_checks(
    url: str,
    api_key: str,
    verify: ssl.SSLContext | bool,
    *,
    refs: Sequence[str],
    timeout: float = 30,
) -> list[CheckResult]:
    """The MAAS preflight checks; nothing in MAAS is changed."""
    results: list[CheckResult] = []
    try:
        client = MaasClient(url, api_key, verify=verify, timeout=timeout)
    except WizardError as exc:
        results.append(failed("maas.reachable", exc.message, url, remediation=exc.remediation))
        return results + _not_checked(refs, "the MAAS settings are invalid")
    with client:
        try:
            version = client.version().get("version", "")
            user = client.whoami()
        except WizardError as exc:
            key = exc.title == "MAAS refused the API key"  # the key is entered on the Credentials page
            results.append(
                failed(
                    "maas.reachable",
                    f"{exc.title}: {exc.message}",
                    url,
                    remediation=exc.remediation,
                    fix_step="credentials" if key else "",
                )
            )
            return results + _not_checked(refs, "MAAS could not be reached")
        role = "administrator" if user.is_superuser else "user"
        results.append(
            passed(
                "maas.reachable",
                f"MAAS {version or '(version unknown)'} accepts the key of {role} {user.username}",
                url,
            )
        )
        for ref in refs:
            results.extend(_check_machine(client, ref, user))
    return results


def _not_checked(refs: Sequence[str], why: str) -> list[CheckResult]:
    out: list[CheckResult] = []
    for ref in refs:
        for check in ("maas.machines", "maas.power-type", "maas.resources"):
            out.append(errored(check, f"not checked: {why}", ref))
    return out


def _check_machine(client: MaasClient, ref: str, user: MaasUser) -> list[CheckResult]:
    try:
        machine = client.machine(ref)
    except WizardError as exc:
        if exc.title not in ("Unknown MAAS machine", "Ambiguous MAAS machine"):
            return [
                errored(c, f"{exc.title}: {exc.message}", ref)
                for c in ("maas.machines", "maas.power-type", "maas.resources")
            ]
        return [
            failed("maas.machines", exc.message, ref, remediation=exc.remediation),
            not_applicable("maas.power-type", "the machine was not found", ref),
            not_applicable("maas.resources", "the machine was not found", ref),
        ]
    out: list[CheckResult] = []
    why = machine_problem(machine, user.username)
    if why:
        out.append(failed("maas.machines", why, ref, details={"system_id": machine.system_id}))
    elif machine.allocated_to(user.username):
        out.append(passed("maas.machines", f"{machine.label} is already allocated to {user.username}", ref))
    else:
        out.append(passed("maas.machines", f"{machine.label} is Ready", ref))
    out.append(_check_power(client, machine, user, ref))
    memory_gib = machine.memory_mib / 1024
    size = f"{machine.cpu_count} CPUs, {memory_gib:.1f} GiB"
    if machine.cpu_count >= MIN_CPUS and machine.memory_mib >= MIN_MEMORY_MIB:
        out.append(passed("maas.resources", f"{machine.label}: {size}", ref))
    else:
        out.append(
            failed(
                "maas.resources",
                f"{machine.label} has {size}; the appliance needs {MIN_CPUS} CPUs and {MIN_MEMORY_MIB // 1024} GiB",
                ref,
                details={"cpu_count": machine.cpu_count, "memory_mib": machine.memory_mib},
            )
        )
    return out


def _check_power(client: MaasClient, machine: Machine, user: MaasUser, ref: str) -> CheckResult:
    if machine.power_type != "redfish":
        return failed(
            "maas.power-type",
            f"{machine.label} is powered by {machine.power_type or 'nothing (manual)'}: the wizard cannot attach "
            "the ISO, so it will be booted by hand",
            ref,
        )
    if not user.is_superuser:
        return failed(
            "maas.power-type",
            f"{machine.label} uses Redfish, but only a MAAS administrator's key can read its BMC credentials; "
            "it will be booted by hand",
            ref,
            remediation="use a MAAS administrator's API key so the wizard can boot it through Redfish",
        )
    try:
        route = boot_route(machine, client.power_parameters(machine.system_id))
    except WizardError as exc:
        return errored("maas.power-type", f"{exc.title}: {exc.message}", ref)
    if isinstance(route, ManualInstruction):
        return failed("maas.power-type", f"{machine.label}: {route.reason}; it will be booted by hand", ref)
    return passed("maas.power-type", f"{machine.label}: Redfish BMC at {route.bmc.address}", ref)
