"""Jump-host checks: enough free space where the wizard writes logs, session state and staged files."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from wizard.core.checks.catalog import CheckResult, errored, failed, passed

GIB = 1024**3
DEFAULT_MIN_FREE = 2 * GIB


def _existing(path: Path) -> Path:
    """The folder itself, or its nearest existing parent (the folder may not have been created yet)."""
    for p in (path, *path.parents):
        if p.exists():
            return p
    return path


def check_free_space(folders: Mapping[str, Path], min_free: int = DEFAULT_MIN_FREE) -> list[CheckResult]:
    """One result per folder (``label → path``): at least ``min_free`` bytes free on its file system."""
    out: list[CheckResult] = []
    for label, folder in folders.items():
        target = f"{label} ({folder})"
        try:
            usage = shutil.disk_usage(_existing(folder))
        except OSError as exc:
            out.append(errored("host.free-space", f"cannot read free space: {exc}", target))
            continue
        details = {"free": usage.free, "required": min_free, "path": str(folder)}
        free_gib, need_gib = usage.free / GIB, min_free / GIB
        if usage.free < min_free:
            out.append(
                failed(
                    "host.free-space",
                    f"{free_gib:.1f} GiB free, {need_gib:.1f} GiB needed",
                    target,
                    details=details,
                    method=("shutil.disk_usage",),
                )
            )
        else:
            out.append(
                passed(
                    "host.free-space",
                    f"{free_gib:.1f} GiB free",
                    target,
                    details=details,
                    method=("shutil.disk_usage",),
                )
            )
    return out
