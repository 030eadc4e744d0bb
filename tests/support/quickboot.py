"""Lab knobs for tests whose subject is not the boot menu.

The rehearsal's ISO counts GRUB down for 5 real seconds, as the product's does (the lab does not scale it by
``--speed``: the keys strategy must beat it). The unattended strategy sends no keys and only waits it out, so a test
about what comes after the boot gives the countdown one second (``--lab grub-timeout=1``) instead of five.
"""

from __future__ import annotations

from wizard.lab.knobs import LabKnobs, parse_knobs

QUICK_BOOT = "grub-timeout=1"


def quick(knobs: str = "") -> LabKnobs:
    """``knobs`` (``--lab`` text) plus the short countdown."""
    return parse_knobs(",".join(k for k in (knobs, QUICK_BOOT) if k))
