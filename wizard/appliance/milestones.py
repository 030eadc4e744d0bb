"""What the appliance installer writes while it works: milestones, percent, success and failure, as data.

The Palette Edge installer's own log lines are not publicly documented. These patterns follow Kairos' published
install stages (``kairos-install.pre``/``.after``) and the lines an operator sees on the console; the rehearsal
lab prints the same lines. When real installer output is known, this module is the one place to change.

Install progress is a fraction of the install phase (0..1); the monitor maps it into its own range.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Milestone:
    key: str
    label: str
    pattern: re.Pattern[str]
    fraction: float
    #: For percent-bearing lines: the range ``fraction .. until`` that 0..100 % of the group ``pct`` maps into.
    until: float | None = None

    def match(self, line: str) -> float | None:
        m = self.pattern.search(line)
        if m is None:
            return None
        pct = m.groupdict().get("pct")
        if pct is None or self.until is None:
            return self.fraction
        return self.fraction + (self.until - self.fraction) * min(100, int(pct)) / 100


def _re(text: str) -> re.Pattern[str]:
    return re.compile(text)


# In install order; a later milestone implies the earlier ones have passed.
MILESTONES: tuple[Milestone, ...] = (
    Milestone("started", "Installer started", _re(r"Running stage: kairos-install\.pre"), 0.01),
    Milestone("partitioning", "Partitioning the disk", _re(r"Partitioning (?:device|disk)"), 0.03),
    Milestone("formatting", "Formatting partitions", _re(r"Formatting partitions"), 0.06),
    Milestone(
        "copying",
        "Copying the system image",
        _re(r"Copying image to COS_STATE(?: \((?P<pct>\d{1,3})%\))?"),
        0.08,
        until=0.78,
    ),
    Milestone("recovery", "Copying the recovery image", _re(r"Copying recovery image"), 0.80),
    Milestone("grub", "Installing the boot loader", _re(r"Installing GRUB|grub2?-install"), 0.90),
    Milestone("after", "Finishing the install", _re(r"Running stage: kairos-install\.after"), 0.95),
    Milestone("finished", "Install finished", _re(r"Installation (?:has )?finished"), 1.0),
)

#: Lines written by the installer (as opposed to every other service in the live system's journal). Failure
#: signatures only count on these lines, so an unrelated service's "ERROR" does not fail an install.
INSTALLER_SOURCE = _re(r"\b(?:kairos-agent|kairos-installer|elemental|immucore|palette-installer)\b")

#: Failure signatures on installer lines.
FAILURE_PATTERNS: tuple[re.Pattern[str], ...] = (
    _re(r"\bERROR\b"),
    _re(r"(?i)failed installing"),
    _re(r"(?i)installation failed"),
    _re(r"(?i)\bpanic:"),
)
#: Failure signatures on any line (the kernel is not the installer, but a panic ends the install all the same).
FATAL_ANYWHERE: tuple[re.Pattern[str], ...] = (_re(r"Kernel panic"),)

#: The stylus agent's line once the Local UI serves (``/var/log/stylus-agent.log`` on the installed OS).
LOCAL_UI_READY = _re(r"(?i)local UI ready")


@dataclass(frozen=True)
class InstallReading:
    """What a batch of log lines says about the install."""

    fraction: float | None  # the furthest milestone seen, None if none
    milestone: Milestone | None
    failure: str | None  # the first failing line
    finished: bool


def read_install_log(lines: Iterable[str]) -> InstallReading:
    best: tuple[float, Milestone] | None = None
    failure: str | None = None
    for line in lines:
        for milestone in MILESTONES:
            fraction = milestone.match(line)
            if fraction is not None and (best is None or fraction > best[0]):
                best = (fraction, milestone)
        if failure is None and is_failure(line):
            failure = line
    finished = best is not None and best[1].key == "finished"
    return InstallReading(best[0] if best else None, best[1] if best else None, failure, finished)


def is_failure(line: str) -> bool:
    if any(p.search(line) for p in FATAL_ANYWHERE):
        return True
    return bool(INSTALLER_SOURCE.search(line)) and any(p.search(line) for p in FAILURE_PATTERNS)


def local_ui_ready(lines: Sequence[str]) -> bool:
    return any(LOCAL_UI_READY.search(line) for line in lines)
