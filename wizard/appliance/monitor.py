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

Each poll's log lines that no earlier poll saw (the reads overlap: each is the log's last lines) go to the job's live
log through ``Reporter.log``, so the GUI can follow a node's installer and agent logs as they are written.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import paramiko

from wizard.appliance import milestones
from wizard.appliance.ssh import (
    Backoff,
    SSHAuthFailed,
    SSHClient,
    SSHCommandTimeout,
    SSHCredentials,
    SSHDisconnected,
    SSHUnreachable,
)
from wizard.appliance.stuck import StuckPolicy, StuckWatch
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job
from wizard.core.progress import Reporter
from wizard.core.trust import (
    Confirm,
    TrustChanged,
    TrustKind,
    TrustRequest,
    TrustStore,
    decide,
    same_fingerprint,
)


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
    # The longest wait between attempts while the node does not answer; None: one interval, so a node coming back
    # from its reboot is seen within a poll (a refused or timed-out connect is cheap; a late notice is not).
    max_backoff: float | None = None
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


def new_lines(previous: Sequence[str], lines: Sequence[str]) -> list[str]:
    """The lines of ``lines`` that follow ``previous``: both are tails of one growing log, so the new read starts
    with the longest suffix of the previous one it repeats. Without any overlap (the log restarted with a new boot,
    or more lines came than one read returns) every line is new. Comparisons happen only where the new read's first
    line occurs in the previous one, so a poll costs about one pass over a bounded tail."""
    if not previous or not lines:
        return list(lines)
    first, n = lines[0], len(previous)
    for start in range(max(0, n - len(lines)), n):  # the longest overlap first
        if previous[start] == first and all(previous[start + i] == lines[i] for i in range(1, n - start)):
            return list(lines[n - start :])
    return list(lines)


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
        on_installed: Callable[[Reporter, CancelToken], Mapping[str, Any] | None] | None = None,
        installer_fingerprint: str = "",
        probe_credentials: SSHCredentials | None = None,
        on_installer_seen: Callable[[str], None] | None = None,
        stuck: StuckPolicy | None = None,
    ) -> None:
        """``on_installed`` runs once, as soon as the installer has finished (the provider's eject for this node, so
        the reboot comes up from disk); its failure is a warning, the eject step tries again.

        Host keys: the live installer and the installed system present different keys. The installer's key is
        pinned for the install (``installer_fingerprint`` or the operator's confirmation, kept in the trust store
        as ``installer@<host>``); a new key is taken for the installed system only once the install finished and
        a login with ``probe_credentials`` (the wizard's key, or the public default password; never a secret) shows
        a new boot id in the installed system — then ``expected_fingerprint`` or the operator's confirmation pins
        it. A key change without a reboot stops with "host key changed"."""
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
        self.trust = trust
        self.confirm = confirm
        self.expected_fingerprint = expected_fingerprint
        self.installer_fingerprint = installer_fingerprint
        self.probe_credentials = probe_credentials
        self.on_installed = on_installed
        # Told the live installer's boot id the first time it answers, so a run that stops after that point and is
        # resumed knows an installed system at first contact is this install's result, not a missed ISO boot.
        self.on_installer_seen = on_installer_seen
        # A live system without install progress past a budget: the interactive installer? (wizard.appliance.stuck)
        self._stuck = StuckWatch(stuck or StuckPolicy())
        self._installer_key: str | None = None
        self._os_key: str | None = None
        self._key_change: dict[str, Any] = {}
        self._eject: dict[str, Any] | None = None
        self._client = SSHClient(
            host,
            port,
            credentials,
            trust=trust,
            confirm=confirm,
            expected_fingerprint=expected_fingerprint,
            connect_timeout=self.poll.connect_timeout,
            command_timeout=self.poll.command_timeout,
            verify_host=self._verify_host,
        )
        self._lock = threading.Lock()
        self._history: list[StageEvent] = []
        self._tail: deque[str] = deque(maxlen=self.poll.tail_lines)
        # The last lines each log command returned, to tell the new ones apart in the next (overlapping) read.
        self._last_read: dict[str, tuple[str, ...]] = {}
        self._warnings: list[str] = []
        self._warned: set[str] = set()
        self._install_fraction = 0.0
        self._install_finished_at: float | None = None
        self._live_boot: str | None = None
        self._os_boot: str | None = None
        self._reboot_seen_by = ""
        self._started = 0.0
        self._report: Reporter | None = None
        self._cancel = CancelToken()

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

    # -- host keys across the reboot -------------------------------------------------------------------------
    @property
    def _installer_host(self) -> str:
        return f"installer@{self.host}"

    def _verify_host(self, key: paramiko.PKey, presented: str) -> None:
        if presented in (self._os_key, self._installer_key):
            return
        subject = key.get_name()
        os_pin = self.trust.pinned(TrustKind.SSH, self.host, self.port)
        live_pin = self.trust.pinned(TrustKind.SSH, self._installer_host, self.port)
        known_os = [f for f in (self.expected_fingerprint, os_pin and str(os_pin["fingerprint"])) if f]
        known_live = [f for f in (self.installer_fingerprint, live_pin and str(live_pin["fingerprint"])) if f]
        if self._os_key is None and self._installer_key is not None:
            self._installed_key(presented, subject)  # after the installer: only across a proven reboot
            return
        if self._os_key is None and any(same_fingerprint(f, presented) for f in known_os):
            # The installed system's known key (or one key for both phases, as some images have).
            self._pin_os(presented, subject)
            return
        if self._os_key is None and any(same_fingerprint(f, presented) for f in known_live):
            self._pin_installer(presented, subject)
            return
        if self._installer_key is None and self._os_key is None:  # first contact with an unknown key
            if self.allow_installed:
                self._pin_os(presented, subject)
            else:
                self._pin_installer(presented, subject)
            return
        # The installed system's key changed: the usual pinned-key rule (a change stops unless confirmed).
        self._pin_os(presented, subject)

    def _pin_os(self, presented: str, subject: str) -> None:
        """Trust ``presented`` as the installed system's key (the project's pin, else the operator's confirmation)."""
        decide(
            self.trust,
            self.confirm,
            TrustKind.SSH,
            self.host,
            self.port,
            presented=presented,
            expected=self.expected_fingerprint,
            subject=subject,
        )
        self._os_key = presented

    def _pin_installer(self, presented: str, subject: str) -> None:
        decide(
            self.trust,
            self.confirm,
            TrustKind.SSH,
            self._installer_host,
            self.port,
            presented=presented,
            expected=self.installer_fingerprint,
            subject=subject,
        )
        self._installer_key = presented

    def _installed_key(self, presented: str, subject: str) -> None:
        """A key other than the installer's after the installer ran: the installed system's, once proven.

        The proof is the login below (a new boot id, in the installed system), not having watched the install end:
        polls see the node only now and then, and a network blip or a loaded jump host can hide the installer's
        last line and the whole reboot between two of them. Seen or not, a key that changed within the
        installer's own boot is refused."""
        assert self._installer_key is not None
        changed = TrustChanged(
            TrustRequest(TrustKind.SSH, self.host, self.port, presented, self._installer_key, subject)
        )
        finished = self._install_finished_at is not None or STAGES.index(self.stage) >= STAGES.index(
            InstallStage.REBOOTING
        )
        if self._live_boot is None:
            raise changed  # the installer's boot was never read: nothing to prove a reboot against
        boot_id, state = self._probe()
        if boot_id is None:
            raise SSHUnreachable(
                "Reboot not proven yet",
                f"{self.node} presents a new host key but the wizard could not yet read its boot id",
                remediation="the node may still be starting; the monitor retries",
            )
        if boot_id == self._live_boot:
            changed.message += f" (boot id {boot_id} is still the installer's: the key changed without a reboot)"
            raise changed
        if state != "active_boot":
            changed.message += f" (it rebooted, but into {state or 'an unknown boot state'}, not the installed system)"
            raise changed
        decide(
            self.trust,
            self.confirm,
            TrustKind.SSH,
            self.host,
            self.port,
            presented=presented,
            expected=self.expected_fingerprint,
            subject=subject,
        )
        self._os_key = presented
        self._key_change = {
            "installer": self._installer_key,
            "installed": presented,
            "proven_by": "boot-id",
            "installer_boot_id": self._live_boot,
            "os_boot_id": boot_id,
            "install_end_seen": finished,
        }
        self._say(f"{self.node}: the installed system's host key is pinned (new boot id {boot_id})")

    def _probe(self) -> tuple[str | None, str]:
        """Boot id and Kairos boot state read through a session whose key is not trusted yet: only the wizard's
        key or the public default password are offered, so nothing secret reaches a host that is not proven."""
        creds = self.probe_credentials
        if creds is None or (creds.pkey is None and creds.key_path is None and creds.password is None):
            return None, ""
        probe = SSHClient(
            self.host,
            self.port,
            creds,
            trust=self.trust,
            connect_timeout=self.poll.connect_timeout,
            command_timeout=self.poll.command_timeout,
            verify_host=lambda key, fp: None,
            keepalive=0,
        )
        sudo = "sudo -n " if self.poll.sudo else ""
        try:
            boot_id = probe.run("cat /proc/sys/kernel/random/boot_id").stdout.strip()
            state = probe.run(sudo + "kairos-agent state get boot").stdout.strip()
            return (boot_id or None), state
        except (SSHUnreachable, SSHDisconnected, SSHCommandTimeout, SSHAuthFailed):
            return None, ""
        finally:
            probe.close()

    # -- eject as soon as the install finished ----------------------------------------------------------------
    def _installed_hook(self, cancel: CancelToken) -> None:
        if self.on_installed is None or self._eject is not None or self._report is None:
            return
        self._say(f"{self.node}: install finished; ejecting its media so the reboot comes up from disk")
        try:
            facts = self.on_installed(self._report.child(INSTALL_END, 0.0), cancel)
            self._eject = {"at": self.clock(), **dict(facts or {})}
        except WizardError as exc:
            self._eject = {"at": self.clock(), "error": exc.message}
            self._warn("eject", f"could not eject the media of {self.node} yet ({exc.message}); the eject step retries")

    # -- the job -------------------------------------------------------------------------------------------
    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        self._report = report
        self._cancel = cancel
        self._started = self.clock()
        self._enter(InstallStage.WAITING, f"waiting for {self.host}:{self.port} to answer SSH")
        cap = self.poll.interval if self.poll.max_backoff is None else max(self.poll.interval, self.poll.max_backoff)
        backoff = Backoff(self.poll.interval, cap)
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
        if self._live_boot is None and self.on_installer_seen is not None:
            self.on_installer_seen(boot_id)
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
            self._check_stuck(boot_id)
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
        if reading.finished:
            self._installed_hook(self._cancel)

    def _check_stuck(self, boot_id: str) -> None:
        """No install progress past the budget: if the kernel command line says interactive installer, stop (or,
        with the operator at the console, warn) with what to do there."""
        if not self._stuck.due(boot_id, self.clock()):
            return
        cmdline = self._client.run("cat /proc/cmdline").stdout
        stuck = self._stuck.verdict(self.node, boot_id, cmdline, self.clock() - self._entered(InstallStage.WAITING))
        if stuck is None:
            return
        if self._stuck.policy.fatal:
            raise stuck
        self._warn("stuck", f"{stuck.message}. {stuck.remediation}")

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
        if self._live_boot is not None:
            self._installed_hook(self._cancel)  # the finish line was missed between two polls
        lines = self._read_lines(f"{sudo}tail -n {self.poll.tail_lines} /var/log/stylus-agent.log")
        # Ready means reachable from here: every later step talks to that port. The agent's own "ready" line
        # can come before the listener (or a firewall may hide it), so it only changes what the operator is told.
        if self._local_ui_answers():
            self._advance(InstallStage.LOCAL_UI_READY, f"https://{self.host}:{self.local_ui_port}")
            self._advance(InstallStage.DONE)
            return True
        if milestones.local_ui_ready(lines):
            self._say(
                f"{self.node}: its agent reports the Local UI ready, but port {self.local_ui_port} does not answer "
                "from this machine yet"
            )
        else:
            self._say(f"{self.node}: installed system up; waiting for the Local UI")
        return False

    def _read_lines(self, command: str) -> list[str]:
        """The log's last lines; the ones no earlier poll of the same log saw go to the tail and the job's live log."""
        result = self._client.run(command)
        lines = result.stdout.splitlines() if result.ok else []
        with self._lock:
            new = new_lines(self._last_read.get(command, ()), lines)
            self._last_read[command] = tuple(lines)
            self._tail.extend(new)
        if new and self._report is not None:
            self._report.log(new)
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
            "installer_fingerprint": self._installer_key or "",
            "host_key_change": dict(self._key_change),
            "eject": dict(self._eject) if self._eject is not None else None,
            "local_ui": f"https://{self.host}:{self.local_ui_port}",
            "warnings": self.warnings(),
        }
