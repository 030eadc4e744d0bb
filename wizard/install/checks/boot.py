"""Preflight: what booting the ISO will do on every node, and whether the chosen ``appliance.boot`` can work.

Read from the ISO itself (:func:`wizard.appliance.media.inspect_iso`, nothing booted): which entry GRUB boots
after its countdown, whether there is an automatic installer to get to, and how the strategy gets there —

- ``unattended``: the wizard's copy of the ISO defaults to the automatic entry; that needs a menu with an automatic
  entry whose default can be changed in place, and a verified ISO (its signature checked by the Verify files step),
  unless the ISO boots the automatic installer already. An ISO the operator hosts (``provider.redfish.iso_url``) is
  not the wizard's copy: a warning says to host the copy there;
- ``keys`` (vSphere): the wizard presses Home, Down…, Enter on the VM's console within GRUB's countdown; that needs an
  automatic entry and a countdown at all;
- ``console``: the operator does the same at each node's console; without an automatic entry only the interactive
  installer remains, which ignores the seed.

Every node gets one result whose message says what its boot will do; a strategy that cannot work is a blocker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wizard.appliance.media import KEY_LABELS, MediaError, MediaInfo, inspect_iso
from wizard.appliance.unattended import patches_for
from wizard.core.checks.catalog import Category, Check, CheckResult, CheckSeverity, failed, passed
from wizard.core.project import BootMode, ConfigureMode, Project, ProviderType

CHECKS = (
    Check(
        "media.boot-plan",
        Category.NODE,
        CheckSeverity.BLOCKER,
        "The node's boot reaches the automatic installer",
        "pick an appliance.boot strategy that works with this ISO (unattended, keys on vSphere, or console), or "
        "use the appliance ISO from Artifact Studio with its signature",
        "files",
    ),
    Check(
        "media.boot-url",
        Category.NODE,
        CheckSeverity.WARNING,
        "An ISO hosted elsewhere boots unattended",
        "host the unattended copy (`palette-wizard media unattended ISO -o COPY`) at provider.redfish.iso_url, or "
        "let the wizard serve it (remove iso_url)",
        "provider",
    ),
)

PROVIDER_NAMES = {
    ProviderType.VSPHERE: "vSphere",
    ProviderType.REDFISH: "Redfish",
    ProviderType.MAAS: "MAAS",
    ProviderType.MANUAL: "manual",
}


@dataclass(frozen=True)
class BootInputs:
    """What the check needs, as plain values (the ISO is read when the check runs)."""

    nodes: tuple[str, ...]
    provider: ProviderType
    mode: BootMode
    seeding: bool
    iso: Path | None
    signature_verified: bool
    external_url: str

    def fingerprint(self, stat: str) -> str:
        parts = (self.nodes, self.provider, self.mode, self.seeding, stat, self.signature_verified, self.external_url)
        return "|".join(str(p) for p in parts)


def boot_inputs(project: Project, verified: Mapping[str, Any] | None) -> BootInputs:
    redfish = project.provider.redfish
    return BootInputs(
        nodes=tuple(n.name for n in project.nodes),
        provider=project.provider.type,
        mode=project.boot_mode(),
        seeding=project.appliance.configure is ConfigureMode.SEED
        or project.boot_mode() in (BootMode.UNATTENDED, BootMode.KEYS),
        iso=project.files.iso.path if project.files.iso else None,
        signature_verified=bool((verified or {}).get("signature_verified")),
        external_url=redfish.iso_url if redfish is not None else "",
    )


def _keys(info: MediaInfo) -> str:
    return " ".join(KEY_LABELS[k] for k in info.console_keys())


def _plan(inputs: BootInputs, info: MediaInfo) -> tuple[bool, str]:
    """(works, what the boot will do) for the project's strategy on this ISO."""
    automatic = info.automatic
    seed = " with its seed" if inputs.seeding else ""
    target = f"{automatic.title!r} (entry {automatic.index})" if automatic else "no automatic installer"
    if info.menu is None:
        return False, "the ISO's GRUB menu cannot be read, so what it boots is unknown: " + "; ".join(info.problems)
    timeout = f"{info.timeout:g} s" if info.timeout is not None else "its timeout"
    if inputs.mode is BootMode.UNATTENDED:
        if info.boots_unattended:
            return True, f"the ISO {info.summary()}: it installs{seed} by itself (used as it is)"
        try:
            patches = patches_for(info)
        except MediaError as exc:
            return False, f"no unattended copy can be made: {exc.message}"
        if not inputs.signature_verified:
            return False, (
                f"the ISO {info.summary()}, and its unattended copy is made only from a verified ISO: no signature "
                "was checked (put the ISO's .sig.bin beside it and set files.public_key)"
            )
        edits = ", ".join(f"{p.where} {p.old.decode()}→{p.new.decode()}" for p in patches)
        return True, f"boots the wizard's unattended copy ({edits}): {target} after {timeout}, installing{seed}"
    if automatic is None:
        return False, (
            f"the ISO {info.summary()} and has no automatic installer to pick: only the interactive installer, "
            "which reads no seed"
        )
    if inputs.mode is BootMode.KEYS:
        if not info.timeout:
            return False, "GRUB shows no countdown (timeout 0): keys cannot reach the menu; use unattended"
        return True, (
            f"the ISO {info.summary()}; the wizard presses {_keys(info)} on the VM's console within those {timeout} "
            f"to boot {target}{seed}"
        )
    return True, (
        f"the ISO {info.summary()}; the operator presses {_keys(info)} at the node's console within {timeout} to "
        f"boot {target}{seed}"
    )


def check_boot(inputs: BootInputs) -> list[CheckResult]:
    """One ``media.boot-plan`` result per node (and a ``media.boot-url`` warning for an ISO hosted elsewhere)."""
    targets = [f"{n} ({PROVIDER_NAMES[inputs.provider]}, boot: {inputs.mode.value})" for n in inputs.nodes]
    if inputs.iso is None:
        text = (
            "the project names no ISO: the operator boots each node from the appliance ISO; at its console, press "
            "Home Enter at GRUB's menu to boot the automatic installer (the default interactive one ignores the seed)"
        )
        return [passed("media.boot-plan", text, t) for t in targets]
    try:
        info = inspect_iso(inputs.iso)
    except MediaError as exc:
        return [failed("media.boot-plan", f"the ISO cannot be read: {exc.message}", t) for t in targets]
    works, text = _plan(inputs, info)
    details = {
        "default": info.default.index if info.default else None,
        "automatic": info.automatic.index if info.automatic else None,
        "timeout": info.timeout,
        "label": info.label,
    }
    out = [(passed if works else failed)("media.boot-plan", text, t, details=details) for t in targets]
    if inputs.mode is BootMode.UNATTENDED and inputs.external_url and not info.boots_unattended:
        out.extend(
            failed(
                "media.boot-url",
                f"the BMCs read {inputs.external_url}, not the wizard's copy: unless that URL serves the unattended "
                "copy, the nodes wait at the interactive installer",
                t,
            )
            for t in targets
        )
    return out
