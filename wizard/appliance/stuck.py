"""A node stuck at the interactive installer is detected, not waited on.

On the appliance ISO as shipped, GRUB's default is the interactive installer (reference §10.1): it waits on the
node's console for its questions and reads no seed, so an unattended install that boots it never starts. From the
jump host that looks like this: the live system answers SSH (``livecd_boot``), its kernel command line
(``/proc/cmdline``) carries ``interactive-install``, the installer's log shows no progress, and no Local UI answers.
After ``budget`` seconds of that in one live boot, the install monitor asks for the command line and, when it says
interactive, stops waiting on the node with what to do at its console (:class:`StuckAtInstaller`) — or, where the
operator is expected at the console anyway (``appliance.boot: console``), warns with the same words and keeps
watching.

Only the interactive installer is judged from the command line: the automatic entry's line differs from the
"(manual)" one only by ``nodepair.enable`` on today's menu, too thin to act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from wizard.core.errors import WizardError

INTERACTIVE_ARG = "interactive-install"


class StuckAtInstaller(WizardError):
    """The node booted the interactive installer, which waits on its console and ignores the seed."""


@dataclass(frozen=True)
class StuckPolicy:
    """How long a live system may show no install progress, what to tell the operator, and whether to stop."""

    budget: float = 5 * 60.0
    guidance: str = ""  # what to do at the console, from the ISO's menu ("power-cycle it; at GRUB press Home Enter…")
    fatal: bool = True  # False with appliance.boot: console (the operator is at the console already)


class StuckWatch:
    """Follows one node's live boots; says when to look at the command line, and what it means."""

    def __init__(self, policy: StuckPolicy) -> None:
        self.policy = policy
        self._boot: str | None = None
        self._idle_since = 0.0
        self._judged: str | None = None  # the live boot already judged

    def due(self, boot_id: str, now: float) -> bool:
        """True once this live boot showed no install progress for the budget (and was not judged yet)."""
        if boot_id != self._boot:
            self._boot, self._idle_since = boot_id, now
        return self._judged != boot_id and now - self._idle_since >= self.policy.budget

    def verdict(self, node: str, boot_id: str, cmdline: str, waited: float) -> StuckAtInstaller | None:
        """The error to raise (or warn with) when ``cmdline`` is the interactive installer's; None otherwise."""
        self._judged = boot_id
        if INTERACTIVE_ARG not in cmdline.split():
            return None
        guidance = self.policy.guidance or (
            "power-cycle it and, when GRUB's menu appears (it waits 5 seconds), press Home Enter to boot "
            "'Palette eXtended Kubernetes Edge Installer'"
        )
        return StuckAtInstaller(
            "Waiting at the interactive installer",
            f"{node} booted the ISO's interactive installer ('Palette Edge Interactive Installer', kernel argument "
            f"{INTERACTIVE_ARG}) and shows no install progress after {waited / 60:.0f} min: it waits for its "
            "questions on the console and ignores the seed",
            details=f"/proc/cmdline: {cmdline.strip()}",
            remediation=(
                f"at {node}'s console: {guidance}; or set appliance.boot: unattended, so the wizard boots a copy of "
                "the ISO whose default is the automatic installer. Then run again (this node alone: --only-node "
                f"{node})"
            ),
        )
