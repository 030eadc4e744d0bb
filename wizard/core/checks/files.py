"""File checks: the Verify files step's results (referenced, not redone) and the ISO's identity via pycdlib."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from wizard.core.checks.catalog import CheckResult, errored, failed, passed

EFI_PLATFORM_ID = 0xEF

#: The appliance's exact volume label is not published; these words appear in the labels of the Palette/Kairos
#: edge images seen so far. A miss is a warning, never a blocker: it is a heuristic.
APPLIANCE_LABEL = re.compile(r"PALETTE|KAIROS|COS|EDGE|SPECTRO", re.IGNORECASE)


@dataclass(frozen=True)
class VerifiedFile:
    """What the Verify files step recorded for one file; ``result`` is None when it has no finished record."""

    field: str
    name: str
    result: dict[str, Any] | None


def check_verified(files: Sequence[VerifiedFile]) -> list[CheckResult]:
    out: list[CheckResult] = []
    for f in files:
        target = f"{f.name} ({f.field})"
        if f.result is None:
            out.append(failed("files.verified", "no finished verification recorded for this file", target))
            continue
        details = {k: f.result.get(k) for k in ("sha256", "size", "signature_verified")}
        out.append(passed("files.verified", f"sha256 {f.result.get('sha256', '?')}", target, details=details))
        if f.result.get("signature_verified"):
            out.append(passed("files.signed", "signature verified", target))
        else:
            out.append(failed("files.signed", "only the sha256 was recorded; no signature was checked", target))
    return out


def _text(raw: bytes) -> str:
    return raw.decode("ascii", "replace").strip()


def check_iso(path: Path) -> list[CheckResult]:
    """Open the ISO's volume descriptors and boot catalog (nothing else is read, so this is quick on 10 GiB)."""
    target = path.name
    method = ("ISO 9660 volume descriptor and El Torito boot catalog read with pycdlib",)
    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(path))
    except (PyCdlibException, OSError, ValueError) as exc:
        return [
            failed("files.iso-format", f"not an ISO 9660 image ({exc})", target, method=method),
        ]
    try:
        volume_id = _text(iso.pvd.volume_identifier)
        system_id = _text(iso.pvd.system_identifier)
        ids = {"volume_id": volume_id, "system_id": system_id}
        out = [passed("files.iso-format", f"ISO 9660 volume {volume_id!r}", target, details=ids, method=method)]
        catalog = iso.eltorito_boot_catalog
        platforms: list[int] = []
        if catalog is not None:
            platforms.append(int(catalog.validation_entry.platform_id))
            platforms.extend(int(s.platform_id) for s in catalog.sections)
        names = ", ".join(f"0x{p:02X}" for p in platforms) or "none"
        if catalog is None:
            out.append(failed("files.iso-uefi", "no El Torito boot catalog: the image is not bootable", target))
        elif EFI_PLATFORM_ID in platforms:
            out.append(
                passed("files.iso-uefi", "El Torito EFI boot entry present", target, details={"platforms": names})
            )
        else:
            out.append(
                failed(
                    "files.iso-uefi",
                    f"El Torito boot catalog has no EFI entry (platform ids: {names}); it boots with BIOS only",
                    target,
                    details={"platforms": names},
                )
            )
        heuristic = ("heuristic: volume id matched against PALETTE/KAIROS/COS/EDGE/SPECTRO",)
        if APPLIANCE_LABEL.search(volume_id):
            out.append(passed("files.iso-label", f"volume id {volume_id!r}", target, details=ids, method=heuristic))
        else:
            out.append(
                failed(
                    "files.iso-label",
                    f"volume id {volume_id!r} does not look like the appliance ISO's",
                    target,
                    details=ids,
                    method=heuristic,
                )
            )
        return out
    except (PyCdlibException, AttributeError) as exc:
        return [errored("files.iso-format", f"the ISO's descriptors could not be read ({exc})", target)]
    finally:
        iso.close()
