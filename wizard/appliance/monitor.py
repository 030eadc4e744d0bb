"""Watch one node install itself from the appliance ISO, over SSH, until its Local UI answers.

The node is polled, never driven: each poll reads its boot id, its Kairos boot state and the installer's log, and
the monitor moves forward through :class:`InstallStage` — it never goes back. A stage that passed between two polls
(a quick reboot, say) is still recorded, in order, when the next poll proves it happened; the reboot is proven by
the boot id changing, whether or not a poll caught SSH being down.

Budgets are soft: when a stage takes longer than planned the monitor warns (``on_warning`` and the job's message)
and keeps watching, because installs on slow disks legitimately take long. Only an install failure in the log, a
login or host-key problem, a node that booted its old system instead of the installer, or the overall (hard) limit
end the job with an error; the hard limit's error says where the node got stuck (a node that never answered SSH did
not boot, which is a different fix from an install that hangs).

A dropped session is not a reboot: only a node that stops accepting connections after its install finished, or a
new boot id, counts as one, so a flaky network between the jump host and the node does not move the stages.

Time comes from an injectable ``clock`` (stage timestamps and budgets) while waits between polls go through the
:class:`~wizard.core.cancel.CancelToken`, so tests run the whole lifecycle in seconds and cancelling is prompt.
Each monitor owns its SSH client and state; several run in parallel as separate jobs, sharing only the (locked)
trust store and the callbacks.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from wizard.appliance import milestones
from wizard.appliance.ssh import (
    Backoff,
    SSHClient,
    SSHCommandTimeout,
    SSHCredentials,
    SSHDisconnected,
    SSHUnreachable,
)
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job
from wizard.core.progress import Reporter
from wizard.core.trust import Confirm, TrustStore


class InstallStage(StrEnum):
    WAITING = "waiting-for-boot"  # SSH does not answer yet: powering on, firmware, installer booting
    BOOTING_INSTALLER = "booting-installer"  # the live system answers; the installer has not logged yet
    INSTALLING = "installing"
    REBOOTING = "rebooting"
    OS_UP = "os-up"  # the installed system runs (active_boot)
    LOCAL_UI_READY = "local-ui-ready"
    DONE = "done"


STAGES: tuple[InstallStage, ...] = tuple(InstallStage)

LABELS: dict[InstallStage, str] = {
    InstallStage.WAITING: "Waiting for the node to boot",
    InstallStage.BOOTING_INSTALLER: "Installer booting",
    InstallStage.INSTALLING: "Installing",
    InstallStage.REBOOTING: "Rebooting into the installed system",
    InstallStage.OS_UP: "Installed system up; services starting",
    InstallStage.LOCAL_UI_READY: "Local UI ready",
    InstallStage.DONE: "Installed",
}

# Where each stage starts on the job's bar; the install itself fills INSTALL_START..INSTALL_END by milestones.
_FRACTION: dict[InstallStage, float] = {
    InstallStage.WAITING: 0.0,
    InstallStage.BOOTING_INSTALLER: 0.03,
    InstallStage.INSTALLING: 0.05,
    InstallStage.REBOOTING: 0.86,
    InstallStage.OS_UP: 0.92,
    InstallStage.LOCAL_UI_READY: 0.98,
    InstallStage.DONE: 1.0,
}
INSTALL_START, INSTALL_END = 0.05, 0.85


class InstallFailed(WizardError):
    """The installer logged a failure."""


class UnexpectedBoot(WizardError):
    """The node booted something other than the installer the monitor waits for."""


class MonitorTimedOut(WizardError):
    """The overall (hard) limit passed."""


@dataclass(frozen=True)
class Budgets:
    """Seconds on the monitor's clock. Soft budgets warn and keep watching; ``overall`` (if set) fails the job."""

    boot: float = 10 * 60.0  # from the start until the installer runs
    install: float = 40 * 60.0  # the installer itself; the docs say at least 15 minutes
    reboot: float = 10 * 60.0  # from the end of the install until the installed system answers
    local_ui: float = 15 * 60.0  # from the installed system up until the Local UI answers
    #: The hard limit: well past the sum of the soft budgets, so a slow install warns many times before it fails.
    overall: float | None = 3 * 3600.0


@dataclass(frozen=True)
class PollSettings:
    """Real-time pacing of the polls (waited through the cancel token)."""

    interval: float = 5.0
    max_backoff: float = 30.0  # the longest wait between attempts while the node does not answer
    connect_timeout: float = 10.0
    command_timeout: float = 30.0
    tail_lines: int = 200
    sudo: bool = True  # the journal and the stylus log need root; the appliance's account may sudo


@dataclass(frozen=True)
class StageEvent:
    stage: InstallStage
    at: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage.value, "at": self.at, "note": self.note}


class InstallMonitor(Job):
    """A job that follows one node from power-on to a ready Local UI; returns the stage history as facts."""

    def __init__(
        self,
        node: str,
        host: str,
        port: int,
        credentials: SSHCredentials,
        *,
        trust: TrustStore,
        confirm: Confirm | None = None,
        expected_fingerprint: str = "",
        local_ui_port: int = 5080,
        budgets: Budgets | None = None,
        poll: PollSettings | None = None,
        clock: Callable[[], float] = time.time,
        on_warning: Callable[[str, str], None] | None = None,
        allow_installed: bool = False,
        step: str = "install",
    ) -> None:
        self.id = f"{step}/{node}"
        self.name = node
        self.node = node
        self.host = host
        self.port = port
        self.local_ui_port = local_ui_port
        self.budgets = budgets or Budgets()
        self.poll = poll or PollSettings()
        self.clock = clock
        self.on_warning = on_warning
        # A node that answers from its installed system at first contact either was installed already (a resumed
        # run may accept that) or did not boot the ISO (the default: say so rather than report a success).
        self.allow_installed = allow_installed
        self._client = SSHClient(
            host,
            port,
            credentials,
            trust=trust,
            confirm=confirm,
            expected_fingerprint=expected_fingerprint,
            connect_timeout=self.poll.connect_timeout,
            command_timeout=self.poll.command_timeout,
        )
        self._lock = threading.Lock()
        self._history: list[StageEvent] = []
        self._tail: deque[str] = deque(maxlen=self.poll.tail_lines)
        self._warnings: list[str] = []
        self._warned: set[str] = set()
        self._install_fraction = 0.0
        self._install_finished_at: float | None = None
        self._live_boot: str | None = None
        self._os_boot: str | None = None
        self._reboot_seen_by = ""
        self._started = 0.0
        self._report: Reporter | None = None

    def fingerprint(self) -> str:
        return f"{self.host}:{self.port}:{self.local_ui_port}"

    # -- what the UI may read while the job runs (thread-safe) ------------------------------------------------
    @property
    def stage(self) -> InstallStage:
        with self._lock:
            return self._history[-1].stage if self._history else InstallStage.WAITING

    def history(self) -> list[StageEvent]:
        with self._lock:
            return list(self._history)

    def tail(self) -> list[str]:
        """The node's latest log lines (installer journal, then the stylus agent's log)."""
        with self._lock:
            return list(self._tail)

    def warnings(self) -> list[str]:
        with self._lock:
            return list(self._warnings)

    # -- the job -------------------------------------------------------------------------------------------
    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        self._report = report
        self._started = self.clock()
        self._enter(InstallStage.WAITING, f"waiting for {self.host}:{self.port} to answer SSH")
        backoff = Backoff(self.poll.interval, max(self.poll.interval, self.poll.max_backoff))
        try:
            while True:
                cancel.raise_if_cancelled()
                try:
                    if self._poll_once():
                        break
                    backoff.reset()
                    delay = self.poll.interval
                except (SSHUnreachable, SSHDisconnected) as exc:
                    self._lost_contact(exc)
                    delay = backoff.next()
                except SSHCommandTimeout as exc:
                    self._say(f"{self.node}: {exc.message}; retrying")
                    delay = self.poll.interval
                self._check_budgets()
                cancel.sleep(delay)
        finally:
            self._client.close()
        return self._facts()

    def _poll_once(self) -> bool:
        """One look at the node; True once the Local UI is ready."""
        c = self._client
        sudo = "sudo -n " if self.poll.sudo else ""
        boot_id = c.run("cat /proc/sys/kernel/random/boot_id").stdout.strip()
        state = c.run(sudo + "kairos-agent state get boot").stdout.strip()
        # The sentinel files only when the agent could not tell: every command is a chance for a flaky link to cut
        # the poll, and a poll cut short must still have recorded what it learnt.
        markers = set() if state in ("active_boot", "livecd_boot") else set(c.run("ls /run/cos").stdout.split())
        if "active_mode" in markers or state == "active_boot":
            return self._installed_system(boot_id, sudo)
        if "live_mode" in markers or state == "livecd_boot":
            self._live_system(boot_id, sudo)
            return False
        self._say(f"{self.node}: booted, boot state {state or 'unknown'!r}; waiting")
        return False

    def _live_system(self, boot_id: str, sudo: str) -> None:
        if self._live_boot is not None and boot_id != self._live_boot:
            if self._install_finished_at is not None:
                self._warn(
                    "live-again",
                    f"{self.node} booted the installer again after the install finished: eject the ISO or put the "
                    "disk first in the boot order, then reboot the node",
                )
            else:
                self._warn("installer-restarted", f"{self.node} rebooted during the install; the installer restarted")
        self._live_boot = boot_id
        if STAGES.index(self.stage) > STAGES.index(InstallStage.INSTALLING):
            return  # the install is over; whatever this live boot logs is not the install being watched
        lines = self._read_lines(f"{sudo}journalctl -b --no-pager -n {self.poll.tail_lines}")
        reading = milestones.read_install_log(lines)
        if reading.fraction is not None or reading.failure is not None:
            self._advance(InstallStage.INSTALLING, "the installer is running")
        if reading.failure is not None:
            raise InstallFailed(
                "Install failed",
                f"the installer on {self.node} reported: {reading.failure}",
                details="\n".join(lines[-40:]),
                remediation=(
                    "read the lines above (and the node's console); fix the cause — often the target disk — then "
                    "boot the node from the ISO again to restart the install"
                ),
            )
        if reading.fraction is None or reading.milestone is None:
            self._advance(InstallStage.BOOTING_INSTALLER, "the live system answers SSH")
            return
        with self._lock:
            self._install_fraction = max(self._install_fraction, reading.fraction)
            fraction = self._install_fraction
        percent = round(fraction * 100)
        self._update(
            INSTALL_START + (INSTALL_END - INSTALL_START) * fraction, f"{reading.milestone.label} ({percent}%)"
        )
        if reading.finished and self._install_finished_at is None:
            self._install_finished_at = self.clock()
            self._say(f"{self.node}: install finished; waiting for the reboot")

    def _installed_system(self, boot_id: str, sudo: str) -> bool:
        if self._live_boot is None and self.stage is InstallStage.WAITING:
            if not self.allow_installed:
                raise UnexpectedBoot(
                    "Node did not boot the installer",
                    f"{self.node} answered from an installed system, not from the appliance ISO's installer",
                    remediation=(
                        "attach the ISO, put it first in the boot order, restart the node and choose 'Palette Edge "
                        "Interactive Installer'; if the node is already installed, skip its install"
                    ),
                )
            self._advance(InstallStage.OS_UP, "already installed at first contact")
        if self._live_boot is not None and boot_id == self._live_boot:
            return False  # cannot be: the live system does not turn into the installed one without a boot
        if self._live_boot is not None and not self._reboot_seen_by:
            self._reboot_seen_by = "boot-id"  # no poll caught SSH down: the new boot id proves the reboot
        if self._os_boot is not None and boot_id != self._os_boot:
            self._say(f"{self.node}: the installed system rebooted")
        self._os_boot = boot_id
        self._advance(InstallStage.OS_UP, f"boot id {boot_id}")
        lines = self._read_lines(f"{sudo}tail -n {self.poll.tail_lines} /var/log/stylus-agent.log")
        if self._local_ui_answers() or milestones.local_ui_ready(lines):
            self._advance(InstallStage.LOCAL_UI_READY, f"https://{self.host}:{self.local_ui_port}")
            self._advance(InstallStage.DONE)
            return True
        self._say(f"{self.node}: installed system up; waiting for the Local UI")
        return False

    def _read_lines(self, command: str) -> list[str]:
        result = self._client.run(command)
        lines = result.stdout.splitlines() if result.ok else []
        with self._lock:
            known = set(self._tail)
            self._tail.extend(line for line in lines if line not in known)
        return lines

    def _local_ui_answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.local_ui_port), timeout=min(2.0, self.poll.connect_timeout)):
                return True
        except OSError:
            return False

    def _lost_contact(self, exc: WizardError) -> None:
        stage = self.stage
        finished = stage is InstallStage.INSTALLING and self._install_finished_at is not None
        if finished and isinstance(exc, SSHUnreachable):  # the node stopped listening: it went down to reboot
            self._reboot_seen_by = "ssh-drop"
            self._advance(InstallStage.REBOOTING, "SSH dropped after the install finished")
        elif stage is InstallStage.WAITING:
            self._say(f"{self.node}: waiting for SSH ({exc.title.lower()})")
        else:
            self._say(f"{self.node}: lost contact ({exc.title.lower()}); retrying")

    # -- budgets -------------------------------------------------------------------------------------------
    def _check_budgets(self) -> None:
        now = self.clock()
        b = self.budgets
        stage = self.stage
        since = self._entered(stage)
        if stage in (InstallStage.WAITING, InstallStage.BOOTING_INSTALLER) and now - self._started > b.boot:
            self._warn(
                "boot",
                f"{self.node} has not started installing after {(now - self._started) / 60:.0f} min: check that it "
                "is powered on, boots from the ISO, and that the installer's questions on its console were answered",
            )
        elif stage is InstallStage.INSTALLING and self._install_finished_at is None and now - since > b.install:
            self._warn(
                "install",
                f"the install on {self.node} has run {(now - since) / 60:.0f} min, longer than the planned "
                f"{b.install / 60:g} min; still watching",
            )
        # Waiting for the installed system starts when the install logged its end, or when the reboot was seen.
        waiting_since = self._install_finished_at if stage is InstallStage.INSTALLING else since
        if stage is InstallStage.REBOOTING or (stage is InstallStage.INSTALLING and waiting_since is not None):
            assert waiting_since is not None
            if now - waiting_since > b.reboot:
                self._warn(
                    "reboot",
                    f"{self.node} has not come back from the install for {(now - waiting_since) / 60:.0f} min: if "
                    "the post-install action was 'poweroff' or 'nothing', power the node on or reboot it",
                )
        if stage is InstallStage.OS_UP and now - since > b.local_ui:
            self._warn(
                "local-ui",
                f"the Local UI of {self.node} does not answer on port {self.local_ui_port} after "
                f"{(now - since) / 60:.0f} min; still watching",
            )
        # Last, so the soft warning that applies is always given before the hard limit ends the job.
        if b.overall is not None and now - self._started > b.overall:
            self._timed_out(b.overall)

    def _timed_out(self, limit: float) -> None:
        stage = self.stage
        minutes = f"{limit / 60:g} min"
        tail = self.tail()[-40:]
        if stage is InstallStage.WAITING:
            message = (
                f"{self.node} never answered SSH at {self.host}:{self.port} within {minutes}: it did not boot the "
                "installer (or is not reachable from here)"
            )
            fix = (
                "check on the node's console or BMC that it is powered on and boots from the ISO (UEFI, CD/DVD "
                "first), and that this machine can reach its address on the SSH port; then run the step again"
            )
        elif stage is InstallStage.BOOTING_INSTALLER:
            message = f"the installer on {self.node} never started within {minutes}"
            fix = (
                "look at the node's console: the interactive installer may be waiting for its questions (target "
                "disk, post-install action); answer them, or attach a seed ISO that answers them, then run again"
            )
        else:
            message = f"{self.node} did not finish within {minutes} (stuck at: {LABELS[stage].lower()})"
            fix = "check the node's console and the log lines below; rerun the step to keep watching"
        raise MonitorTimedOut(
            "Install monitor timed out",
            message,
            details="\n".join([*self.warnings(), *tail]) or "no log lines were read from the node",
            remediation=fix,
        )

    # -- bookkeeping ---------------------------------------------------------------------------------------
    def _entered(self, stage: InstallStage) -> float:
        with self._lock:
            for event in reversed(self._history):
                if event.stage is stage:
                    return event.at
        return self._started

    def _enter(self, stage: InstallStage, note: str = "") -> None:
        with self._lock:
            self._history.append(StageEvent(stage, self.clock(), note))
        self._update(_FRACTION[stage], f"{LABELS[stage]}" + (f": {note}" if note else ""))

    def _advance(self, stage: InstallStage, note: str = "") -> None:
        """Move forward to ``stage``, recording every stage passed on the way (each exactly once, in order)."""
        current = self.stage
        if STAGES.index(stage) <= STAGES.index(current):
            return
        for passed in STAGES[STAGES.index(current) + 1 : STAGES.index(stage)]:
            self._enter(passed, "passed between two polls")
        self._enter(stage, note)

    def _update(self, fraction: float, message: str) -> None:
        if self._report is not None:
            self._report.update(fraction, message)

    def _say(self, message: str) -> None:
        if self._report is not None:
            self._report.update(self._report.fraction, message)

    def _warn(self, key: str, message: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
            self._warnings.append(message)
        self._say(f"warning: {message}")
        if self.on_warning is not None:
            self.on_warning(self.node, message)

    def _facts(self) -> dict[str, Any]:
        history = self.history()
        return {
            "stages": [e.to_dict() for e in history],
            "installer_boot_id": self._live_boot or "",
            "os_boot_id": self._os_boot or "",
            "reboot_detected_by": self._reboot_seen_by,
            "install_seconds": (self._install_finished_at - self._entered(InstallStage.INSTALLING))
            if self._install_finished_at is not None
            else None,
            "host_fingerprint": self._client.host_fingerprint,
            "local_ui": f"https://{self.host}:{self.local_ui_port}",
            "warnings": self.warnings(),
        }
