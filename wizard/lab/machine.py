"""A simulated appliance machine: power, boot media, and the install lifecycle a node goes through.

The stages follow the documented flow: the machine boots the attached ISO's GRUB menu and, after its countdown (or
the keys pressed on its console), the chosen entry (:mod:`wizard.lab.bootmenu`). The appliance ISO's default is the
"Palette Edge Interactive Installer": it waits on the console for its questions and ignores a ``cidata`` seed (the
appliance's Kairos reads no configuration there, reference §10.1); the "(manual)" entry is a live shell that does
nothing by itself. Only the automatic "Palette eXtended Kubernetes Edge Installer" installs unattended, honouring an
attached seed (Kairos live mode, ``/run/cos/live_mode``): it partitions the disk and copies the image (at least 15
minutes on real hardware), then reboots into the installed system (``/run/cos/active_mode``,
``kairos-agent state get boot`` = ``active_boot``), where the stylus services and the Local UI come up. Time comes
from an injectable clock and every duration is scaled by ``speed``, so a rehearsal can take minutes and a test
seconds (GRUB's countdown excepted: see :mod:`wizard.lab.bootmenu`).

Everything here is derived from the clock on demand: there is no background thread to race with.

Fault knobs (plain attributes, settable at any time; :class:`~wizard.lab.lab.NodeFaults` sets them from the lab's
configuration):

- ``fail_install`` / ``install_error``: the installer fails and logs ``kairos-agent: ERROR failed installing: <reason>``
  after partitioning; the live system stays up (SSH answers) so the log can be read;
- ``disks`` and ``install_device``: a target disk smaller than :data:`INSTALLER_MIN_DISK` makes the installer fail
  the same way, with the disk size as the reason; any disk is reported as is (``lsblk``, Local UI);
- ``cpus``, ``memory_mb``: the facts the node reports (by default the recommended Medium size);
- ``never_boots``: power on (and reset) do nothing, like a machine stuck before its firmware;
- ``clock_offset``: seconds the node's wall clock is ahead (negative: behind) of the lab clock; visible through
  ``date``, log timestamps and the Local UI's time fields;
- ``ntp_enabled``, ``ntp_servers``: what ``timedatectl`` reports; time syncs only when enabled with a server;
- ``stale_partitions``: disks that still carry an earlier install's ``COS_*`` partitions;
- ``assumed_media``: the menu a medium the lab cannot read is taken to have (``interactive``: the appliance ISO's,
  default entry 2; ``automatic``: default entry 0); ``media_reader`` reads media named otherwise than by a file or
  an HTTP URL (a vSphere datastore path).

:meth:`Machine.reboot` is the installed system rebooting itself (as the agent does to apply changed user data): the
OS, SSH and the Local UI go down and come back after the scaled reboot, OS boot and service timings.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from wizard.appliance.grub import EntryKind
from wizard.lab.bootmenu import BootMenu, MediaReader, MenuState, read_menu

if TYPE_CHECKING:
    from wizard.appliance.seed import SeedConfig
    from wizard.lab.timeline import Timeline


class Stage(StrEnum):
    POWERED_OFF = "powered-off"
    NO_BOOT_MEDIA = "no-boot-media"  # powered on, nothing bootable: the firmware waits
    BOOTING_INSTALLER = "booting-installer"  # firmware, GRUB's menu, then the chosen entry's live system booting
    INSTALLER_WAITING = "installer-waiting"  # the interactive installer waits for its questions on the console
    LIVE_SHELL = "live-shell"  # the "(manual)" entry: a live system that installs nothing by itself
    INSTALLING = "installing"
    INSTALL_FAILED = "install-failed"
    INSTALL_DONE = "install-done"  # post-install action "nothing": still in the live system until rebooted
    REBOOTING = "rebooting"
    BOOTING_OS = "booting-os"
    RUNNING = "running"  # installed OS up; stylus services starting, then the Local UI


#: Where the live system runs (SSH answers, ``livecd_boot``): whatever entry of the ISO booted.
LIVE_STAGES = (Stage.INSTALLER_WAITING, Stage.LIVE_SHELL, Stage.INSTALLING, Stage.INSTALL_FAILED, Stage.INSTALL_DONE)
KERNEL_LINE = "kernel: Linux version 6.8.0 (Palette eXtended Kubernetes Edge)"
INSTALLED_CMDLINE = "BOOT_IMAGE=/cOS/vmlinuz console=tty1 root=LABEL=COS_STATE cos-img/filename=/cOS/active.img panic=5"


@dataclass(frozen=True)
class Timings:
    """Seconds each phase takes at speed 1 (roughly what the docs describe for real hardware)."""

    firmware: float = 20.0
    installer_boot: float = 60.0
    install: float = 15 * 60.0
    reboot: float = 30.0
    os_boot: float = 60.0
    services: float = 90.0  # from OS up until the Local UI answers
    finish: float = 10.0  # from the installer's last line until it reboots or powers off

    def scaled(self, speed: float) -> Timings:
        s = 1.0 / max(speed, 1e-6)
        return Timings(*(getattr(self, f) * s for f in self.__dataclass_fields__))


# The installer's milestones: (fraction of the install phase, log line). Stage names are Kairos' published
# install stages; the percent-bearing lines are what an operator sees on the console.
INSTALL_MILESTONES: tuple[tuple[float, str], ...] = (
    (0.00, "kairos-agent: Running stage: kairos-install.pre.before"),
    (0.02, "kairos-agent: Partitioning device /dev/sda"),
    (0.05, "kairos-agent: Formatting partitions (COS_STATE, COS_OEM, COS_RECOVERY, COS_PERSISTENT)"),
    (0.10, "kairos-agent: Copying image to COS_STATE (10%)"),
    (0.30, "kairos-agent: Copying image to COS_STATE (30%)"),
    (0.50, "kairos-agent: Copying image to COS_STATE (50%)"),
    (0.70, "kairos-agent: Copying image to COS_STATE (70%)"),
    (0.80, "kairos-agent: Copying recovery image to COS_RECOVERY"),
    (0.90, "kairos-agent: Installing GRUB bootloader"),
    (0.95, "kairos-agent: Running stage: kairos-install.after"),
    (1.00, "kairos-agent: Installation has finished"),
)
INSTALL_FAILURE_PREFIX = "kairos-agent: ERROR failed installing: "
DEFAULT_INSTALL_ERROR = "could not partition device /dev/sda: device busy"
INSTALL_FAILURE_LINE = INSTALL_FAILURE_PREFIX + DEFAULT_INSTALL_ERROR
#: The smallest target disk the installer accepts: room for the EFI, OEM, recovery, state and persistent partitions
#: (the state and recovery partitions each hold a full system image). Below it the install fails; the documented
#: requirement (300 GB) is checked by the wizard after boot, not by the installer.
INSTALLER_MIN_DISK = 64 * 1024**3
#: The Kairos partition labels an install writes on its target disk (and the installer's pre-check looks for).
COS_PARTITIONS: tuple[tuple[str, str, int], ...] = (  # label, file system, size (0: the rest of the disk)
    ("COS_GRUB", "vfat", 64 * 1024**2),
    ("COS_OEM", "ext4", 64 * 1024**2),
    ("COS_RECOVERY", "ext4", 8 * 1024**3),
    ("COS_STATE", "ext4", 16 * 1024**3),
    ("COS_PERSISTENT", "ext4", 0),
)


@dataclass
class _Boot:
    boot_id: str
    started: float
    from_media: bool
    menu: MenuState | None = None  # GRUB's menu on a boot from media
    entered: bool = False  # the chosen entry's boot was logged (and a seed applied)

    @property
    def kind(self) -> EntryKind | None:
        """The kind of entry this boot runs (None until GRUB chose one)."""
        if self.menu is None or self.menu.chosen is None:
            return None
        return self.menu.menu.items[self.menu.chosen].kind


@dataclass
class Machine:
    """One node's hardware and install state. Thread-safe; time-driven."""

    name: str
    clock: Callable[[], float] = time.time
    speed: float = 1.0
    timings: Timings = field(default_factory=Timings)
    # The Medium size the appliance's sizing table recommends (16 CPU / 32 GB); two disks, 800+ GB together.
    cpus: int = 16
    memory_mb: int = 32768
    disks: tuple[tuple[str, int], ...] = (("sda", 300 * 1024**3), ("sdb", 500 * 1024**3))
    fail_install: bool = False
    post_install: str = "reboot"  # reboot | poweroff | nothing, as chosen in the interactive installer
    preinstalled: bool = False  # already installed and running (a lab for the steps after the install)
    install_error: str = ""  # a reason makes the install fail with it (``fail_install`` uses a default reason)
    install_device: str = "sda"
    never_boots: bool = False
    clock_offset: float = 0.0
    ntp_enabled: bool = True
    ntp_servers: tuple[str, ...] = ("ntp.lab.internal",)
    stale_partitions: tuple[str, ...] = ()
    #: The boot order puts the CD first: a reboot while the ISO is still inserted boots the installer again
    #: (False: the firmware falls through to the installed disk, as with a one-time CD boot).
    media_first: bool = False
    assumed_media: str = "interactive"
    media_reader: MediaReader | None = None

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._powered_on_at: float | None = None
        self._media: str | None = None
        self._menu: BootMenu | None = None  # the inserted medium's menu, read when it was inserted
        self.media_note = ""  # why the inserted medium's menu could not be read (the assumed one is used)
        self._seed_source: str | None = None
        self._seed: SeedConfig | None = None
        self.seed_error = ""  # why the last attached seed was ignored (not a cidata ISO, no settings)
        self.seeded_with: SeedConfig | None = None  # the seed the last boot from media applied
        #: Called with the seed when the machine boots with one attached: the node's accounts take it
        #: (:class:`~wizard.lab.sshd.LabSSHServer` registers its accounts here).
        self.seed_listeners: list[Callable[[SeedConfig], None]] = []
        self._installed = False
        self._post_action_due = False  # the install finished; its reboot or power-off has not happened yet
        self._boot: _Boot | None = None
        self._reboot_at: float | None = None  # a reboot the running system has scheduled for itself
        self._journal: list[tuple[float, str]] = []
        self._t = self.timings.scaled(self.speed)
        self.timeline: Timeline | None = None  # the lab's ledger of appliance work (wizard.lab.timeline)
        if self.preinstalled:
            t = self._t
            now = self.clock()
            self._installed = True
            self._powered_on_at = now - (t.firmware + t.os_boot + t.services) - 1.0
            self._boot = _Boot(str(uuid.uuid4()), self._powered_on_at, from_media=False)
            self._log(self._powered_on_at, KERNEL_LINE)

    # -- operator and BMC actions ---------------------------------------------------------------------------
    def insert_media(self, image: str) -> None:
        """Insert the medium ``image`` names; its GRUB menu is read now, as firmware would find it when booting."""
        menu, note = read_menu(image, self.media_reader)
        with self._lock:
            self._media, self._menu, self.media_note = image, menu, note

    def eject_media(self) -> None:
        with self._lock:
            self._media, self._menu = None, None

    @property
    def boot_menu(self) -> BootMenu:
        """The menu the inserted medium shows (the assumed one when it could not be read)."""
        with self._lock:
            return self._menu or BootMenu.assumed(self.assumed_media)

    @property
    def media(self) -> str | None:
        with self._lock:
            return self._media

    def insert_seed(self, source: str, image: bytes | None) -> None:
        """A NoCloud seed on the second drive: ``source`` names it (URL or datastore path), ``image`` is the ISO
        as the drive would read it (None when it could not be read). An image that is no seed is ignored, as
        cloud-init ignores a drive without a ``cidata`` volume."""
        from wizard.appliance.seed import parse_seed

        seed: SeedConfig | None = None
        error = "the image could not be read" if image is None else ""
        if image is not None:
            try:
                seed = parse_seed(image)
            except ValueError as exc:
                error = str(exc)
        with self._lock:
            self._seed_source, self._seed, self.seed_error = source, seed, error

    def eject_seed(self) -> None:
        with self._lock:
            self._seed_source, self._seed = None, None

    @property
    def seed_source(self) -> str | None:
        with self._lock:
            return self._seed_source

    def power_on(self) -> None:
        with self._lock:
            self._advance()
            if self._powered_on_at is None and not self.never_boots:
                self._start_boot(self.clock())

    def power_off(self) -> None:
        with self._lock:
            self._advance()
            self._powered_on_at = None
            self._boot = None
            self._reboot_at = None

    def reset(self) -> None:
        with self._lock:
            self.power_off()
            if not self.never_boots:
                self._start_boot(self.clock())

    def reboot(self) -> tuple[float, float]:
        """Schedule a reboot of the running system once the agent has finished its work (the scaled ``finish``
        time); returns when it goes down and when its Local UI answers again."""
        with self._lock:
            self._advance()
            now = self.clock()
            if self._stage(now) is not Stage.RUNNING:
                raise RuntimeError(f"{self.name} is not running its installed system ({self._stage(now)})")
            t = self._t
            at = now + t.finish
            self._reboot_at = at
            back = at + t.reboot + t.firmware + t.os_boot + t.services
            if self.timeline is not None:
                self.timeline.record("reboot", self.name, now, back)
            return at, back

    @property
    def powered_on(self) -> bool:
        with self._lock:
            self._advance()
            return self._powered_on_at is not None

    # -- what the node looks like now ----------------------------------------------------------------------
    def _start_boot(self, now: float) -> None:
        self._powered_on_at = now
        from_media = self._media is not None and not self._installed
        boot = _Boot(str(uuid.uuid4()), now, from_media)
        if from_media:
            boot.menu = MenuState(self._menu or BootMenu.assumed(self.assumed_media), shown_at=now + self._t.firmware)
        else:
            self._log(now, KERNEL_LINE)
        self._boot = boot

    def _settle(self, boot: _Boot, now: float) -> None:
        """Let GRUB's countdown run out, and start the chosen entry once: its kernel, and for the automatic installer
        the seed it reads at boot (the interactive installer and the live shell read none)."""
        menu = boot.menu
        if menu is None:
            return
        menu.settle(now)
        if boot.entered or menu.chosen is None or menu.chosen_at is None:
            return
        boot.entered = True
        at = menu.chosen_at
        item = menu.menu.items[menu.chosen]
        self._log(at, f"grub: booting '{item.title}'")
        self._log(at, KERNEL_LINE)
        if self._installed:
            return
        up = at + self._t.installer_boot
        if item.kind is EntryKind.INTERACTIVE:
            self._log(up, "palette-installer: interactive installation: select the target disk")
            return
        if item.kind is not EntryKind.AUTOMATIC:
            self._log(up, "kairos: live system ready (manual install: run kairos-agent install)")
            return
        if menu.menu.post_install:
            self.post_install = menu.menu.post_install  # the ISO's own config.yaml, unless a seed says otherwise
        seed = self._seed
        if seed is not None:
            # The installer reads the seed at boot: its accounts serve the live system and are installed with it.
            self.seeded_with = seed
            self.post_install = seed.post_install
            self._log(at, f"cloud-init: NoCloud datasource cidata: host name {seed.hostname or '(unchanged)'}")
            for listener in list(self.seed_listeners):
                listener(seed)
        if self.timeline is not None and self.install_failure() is None:
            # The appliance's own work: from power-on (firmware, GRUB's countdown) to the end of the install.
            self.timeline.record("install", self.name, boot.started, up + self._t.install + self._t.finish)

    def press_keys(self, keys: list[str]) -> int:
        """Keys typed on the console now (``up``, ``down``, ``home``, ``end``, ``enter``, …); returns how many
        reached GRUB's menu (keys during the firmware or after an entry booted are lost, as on a real console)."""
        with self._lock:
            self._advance()
            boot = self._boot
            if boot is None or boot.menu is None:
                return 0
            now = self.clock()
            reached = sum(1 for key in keys if boot.menu.press(key, now))
            self._settle(boot, now)
            return reached

    def console_state(self) -> tuple[Stage, MenuState | None, float]:
        """What the console shows: the stage, this boot's menu (a copy) and the lab clock now."""
        with self._lock:
            self._advance()
            now = self.clock()
            boot = self._boot
            menu = None
            if boot is not None and boot.menu is not None:
                m = boot.menu
                menu = MenuState(m.menu, m.shown_at, m.highlight, m.stopped, m.chosen, m.chosen_at, list(m.keys))
            return self._stage(now), menu, now

    def cmdline(self) -> str | None:
        """``/proc/cmdline`` of the running system (None when nothing runs)."""
        with self._lock:
            self._advance()
            boot = self._boot
            if boot is None or self._stage(self.clock()) in (Stage.POWERED_OFF, Stage.NO_BOOT_MEDIA, Stage.REBOOTING):
                return None
            if boot.menu is not None and boot.menu.chosen is not None:
                return boot.menu.menu.cmdline(boot.menu.chosen)
            if boot.from_media:
                return None
            return INSTALLED_CMDLINE

    def _log(self, at: float, line: str) -> None:
        self._journal.append((at, line))

    def local_time(self) -> float:
        """The node's own wall clock (``date``): the lab clock plus the node's skew."""
        return self.clock() + self.clock_offset

    def install_failure(self) -> str | None:
        """The reason the installer fails on this machine now, or None when it would succeed."""
        if self.install_error:
            return self.install_error
        size = dict(self.disks).get(self.install_device)
        if size is None:
            return f"device /dev/{self.install_device} not found"
        if size < INSTALLER_MIN_DISK:
            return (
                f"device /dev/{self.install_device} is too small: {size / 1024**3:.0f} GiB, "
                f"the installation needs at least {INSTALLER_MIN_DISK / 1024**3:.0f} GiB"
            )
        return DEFAULT_INSTALL_ERROR if self.fail_install else None

    def _failing(self) -> bool:
        return self.install_failure() is not None and not self._installed

    def block_devices(self) -> list[dict[str, object]]:
        """The disks and their partitions as ``lsblk -J -b -o NAME,SIZE,TYPE,FSTYPE,LABEL,MOUNTPOINT`` lists them."""
        with self._lock:
            self._advance()
            installed = self._installed
            running = self._stage(self.clock()) in (Stage.RUNNING, Stage.BOOTING_OS)
        out: list[dict[str, object]] = []
        for name, size in self.disks:
            layout = (installed and name == self.install_device) or name in self.stale_partitions
            children: list[dict[str, object]] = []
            if layout:
                used = 0
                for i, (label, fs, part) in enumerate(COS_PARTITIONS, start=1):
                    part_size = part or max(0, size - used)
                    used += part_size
                    mounted = running and name == self.install_device
                    mount = {"COS_OEM": "/oem", "COS_PERSISTENT": "/usr/local", "COS_STATE": "/run/initramfs/cos-state"}
                    children.append(
                        {
                            "name": f"{name}{i}",
                            "size": part_size,
                            "type": "part",
                            "fstype": fs,
                            "label": label,
                            "mountpoint": mount.get(label) if mounted else None,
                        }
                    )
            disk: dict[str, object] = {
                "name": name,
                "size": size,
                "type": "disk",
                "fstype": None,
                "label": None,
                "mountpoint": None,
            }
            if children:
                disk["children"] = children
            out.append(disk)
        return out

    def _advance(self) -> None:
        """Apply everything the clock says has happened since the last look (install end, reboot)."""
        self._apply_scheduled_reboot()
        boot = self._boot
        if boot is None or not boot.from_media:
            return
        now = self.clock()
        self._settle(boot, now)
        if self._installed and not self._post_action_due:
            return  # the installer booted again on an installed machine: it waits in its menu
        if boot.kind is not EntryKind.AUTOMATIC or boot.menu is None or boot.menu.chosen_at is None:
            return  # GRUB's menu, the interactive installer or the live shell: nothing installs by itself
        t = self._t
        install_start = boot.menu.chosen_at + t.installer_boot
        install_end = install_start + t.install
        logged = {line for at, line in self._journal if at >= boot.started}
        failure = None if self._installed else self.install_failure()
        if now >= install_start:
            for fraction, line in INSTALL_MILESTONES:
                at = install_start + fraction * t.install
                if failure is not None and fraction >= 0.05:
                    failed_at = install_start + 0.05 * t.install
                    if failed_at <= now and not any(f.startswith(INSTALL_FAILURE_PREFIX) for f in logged):
                        self._log(failed_at, INSTALL_FAILURE_PREFIX + failure)
                        logged.add(INSTALL_FAILURE_PREFIX + failure)
                    break
                if at <= now and line not in logged:
                    self._log(at, line)
                    logged.add(line)
        if failure is not None or now < install_end:
            return
        if not self._installed:
            # The install finished: the disk now holds the OS; the machine follows the post-install action.
            self._installed = True
            self._post_action_due = self.post_install in ("poweroff", "reboot")
            if not self._post_action_due:  # "nothing": stays in the live system until someone reboots it
                self._log(install_end, "kairos-agent: Installation finished; reboot to start the installed system")
        act_at = install_end + t.finish
        if not self._post_action_due or now < act_at:
            return
        self._post_action_due = False
        if self.post_install == "poweroff":
            self._log(act_at, "systemd-shutdown: Powering off.")
            self._powered_on_at = None
            self._boot = None
        else:
            self._log(act_at, "systemd-shutdown: Rebooting.")
            # With the CD first in the boot order and the ISO still inserted, the firmware boots the installer again.
            again = self.media_first and self._media is not None
            if self.timeline is not None and not again:
                back = act_at + t.reboot + t.firmware + t.os_boot + t.services
                self.timeline.record("reboot", self.name, act_at, back)
            self._reboot_into(act_at + t.reboot, again)

    def _apply_scheduled_reboot(self) -> None:
        at = self._reboot_at
        if at is None or self.clock() < at:
            return
        self._reboot_at = None
        if self._boot is None:
            return  # powered off meanwhile
        self._log(at, "systemd-shutdown: Rebooting.")
        if self.never_boots:  # the firmware never gets going again: the machine stays dark
            self._powered_on_at, self._boot = None, None
            return
        # As after the install: with the CD first and the ISO still inserted, the firmware boots the installer.
        again = self.media_first and self._media is not None
        self._reboot_into(at + self._t.reboot, again)

    def _reboot_into(self, at: float, from_media: bool) -> None:
        """The machine comes back at ``at``: from the media still inserted (its menu again) or from the disk."""
        boot = _Boot(str(uuid.uuid4()), at, from_media)
        if from_media:
            boot.menu = MenuState(self._menu or BootMenu.assumed(self.assumed_media), shown_at=at + self._t.firmware)
        else:
            self._log(at, KERNEL_LINE)
        self._boot = boot

    @property
    def stage(self) -> Stage:
        with self._lock:
            self._advance()
            return self._stage(self.clock())

    def _stage(self, now: float) -> Stage:
        boot = self._boot
        if self._powered_on_at is None or boot is None:
            return Stage.POWERED_OFF
        t = self._t
        if now < boot.started:
            return Stage.REBOOTING
        if boot.from_media:
            self._settle(boot, now)
            chosen_at = boot.menu.chosen_at if boot.menu is not None else None
            if chosen_at is None or now < chosen_at + t.installer_boot:
                return Stage.BOOTING_INSTALLER
            if self._installed:
                return Stage.INSTALL_DONE
            if boot.kind is EntryKind.INTERACTIVE:
                return Stage.INSTALLER_WAITING
            if boot.kind is not EntryKind.AUTOMATIC:
                return Stage.LIVE_SHELL
            failed_at = chosen_at + t.installer_boot + 0.05 * t.install
            return Stage.INSTALL_FAILED if self._failing() and now >= failed_at else Stage.INSTALLING
        if not self._installed:
            return Stage.NO_BOOT_MEDIA
        if now < boot.started + t.firmware + t.os_boot:
            return Stage.BOOTING_OS
        return Stage.RUNNING

    @property
    def installed(self) -> bool:
        with self._lock:
            self._advance()
            return self._installed

    @property
    def boot_id(self) -> str | None:
        """The kernel's boot id while an OS is up (it changes on every boot); None when nothing answers."""
        with self._lock:
            self._advance()
            if self._stage(self.clock()) in (Stage.POWERED_OFF, Stage.NO_BOOT_MEDIA, Stage.REBOOTING):
                return None
            return self._boot.boot_id if self._boot else None

    @property
    def ssh_up(self) -> bool:
        """SSH answers in the live installer once it has booted, and in the installed OS once it has booted."""
        with self._lock:
            self._advance()
            now = self.clock()
            stage = self._stage(now)
            boot = self._boot
            if boot is None:
                return False
            if stage in LIVE_STAGES:
                return True
            if stage is Stage.BOOTING_INSTALLER:
                chosen_at = boot.menu.chosen_at if boot.menu is not None else None
                return chosen_at is not None and now >= chosen_at + self._t.installer_boot * 0.8
            return stage is Stage.RUNNING or (
                stage is Stage.BOOTING_OS and now >= boot.started + self._t.firmware + self._t.os_boot * 0.8
            )

    @property
    def local_ui_up(self) -> bool:
        with self._lock:
            self._advance()
            now = self.clock()
            boot = self._boot
            if self._stage(now) is not Stage.RUNNING or boot is None:
                return False
            return now >= boot.started + self._t.firmware + self._t.os_boot + self._t.services

    def kairos_boot_state(self) -> str:
        """What ``kairos-agent state get boot`` prints."""
        stage = self.stage
        if stage in LIVE_STAGES or stage is Stage.BOOTING_INSTALLER:
            return "livecd_boot"
        if stage in (Stage.RUNNING, Stage.BOOTING_OS):
            return "active_boot"
        return "unknown"

    def cos_markers(self) -> list[str]:
        """The sentinel files under /run/cos."""
        state = self.kairos_boot_state()
        return {"livecd_boot": ["live_mode"], "active_boot": ["active_mode"]}.get(state, [])

    def journal(self, lines: int | None = None, *, this_boot: bool = True) -> list[str]:
        with self._lock:
            self._advance()
            now = self.clock()
            # The installed OS keeps its own journal; the live installer's is gone after the reboot.
            start = self._boot.started if (this_boot and self._boot) else float("-inf")
            entries = [(at, line) for at, line in self._journal if start <= at <= now]
        entries.sort(key=lambda e: e[0])
        # Timestamps come from the node's own (possibly skewed) clock, as journald writes them.
        skew = self.clock_offset
        text = [f"{time.strftime('%b %d %H:%M:%S', time.gmtime(at + skew))} {self.name} {line}" for at, line in entries]
        return text[-lines:] if lines else text

    def service_log(self, lines: int | None = None) -> list[str]:
        """``/var/log/stylus-agent.log`` on the installed OS: the services coming up, then the Local UI."""
        with self._lock:
            self._advance()
            now = self.clock()
            boot = self._boot
            if not self._installed or boot is None or boot.from_media:
                return []
            up = boot.started + self._t.firmware + self._t.os_boot
            events = [
                (up, "stylus-agent: starting stylus agent (management mode: local)"),
                (up + self._t.services * 0.3, "stylus-agent: content store ready"),
                (up + self._t.services * 0.7, "stylus-agent: starting local UI server on :5080"),
                (up + self._t.services, "stylus-agent: local UI ready"),
            ]
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        skew = self.clock_offset
        out = [f"{time.strftime(stamp, time.gmtime(at + skew))} {line}" for at, line in events if at <= now]
        return out[-lines:] if lines else out
