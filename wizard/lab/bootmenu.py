"""What a lab machine's firmware and GRUB do with the medium attached to it: read its menu, count down, take keys.

A real machine booting the appliance ISO shows GRUB's menu for ``timeout`` seconds and then boots the default entry;
a key pressed during the countdown stops it, arrows move the highlight, Enter boots the highlighted entry
(grub-core/normal/menu.c: Up/Down move one entry and stop at the ends, Home/End jump to the first/last). The lab
machine does the same with the menu of the ISO actually attached to it, read the way firmware reads it:

- a ``file://`` URI or a path: the file;
- an ``http(s)://`` URL (a BMC's virtual media from the wizard's ISO server): HTTP range requests, so a big ISO is
  never downloaded to read its menu;
- anything else (a vSphere datastore path): through the reader the control plane's watcher supplies.

A medium that cannot be read (tests name media without bytes behind them) gets the lab's assumed menu: the
appliance ISO's (default 2, the interactive installer) or, with the lab's ``media=automatic`` knob, the same menu
with default 0. GRUB's countdown runs in real (lab clock) seconds, not scaled by the lab's speed: it is the time an
operator or a keyboard driver has, and the wizard's keys must arrive within it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

import httpx

from wizard.appliance.grub import EntryKind
from wizard.appliance.media import MediaError, MediaInfo, inspect_stream

log = logging.getLogger(__name__)

MEDIA_CHOICES = ("interactive", "automatic")
#: GRUB's countdown on the appliance ISO (``set timeout=5``), also the assumed menu's.
MENU_TIMEOUT = 5.0
INTERACTIVE = "nodepair.enable interactive-install"
#: The kernel command line's console parameters on UEFI (the menu sets them in an ``if``), expanded in /proc/cmdline.
CONSOLE_PARAMS = "console=ttyS0,115200n8 console=tty0"
#: USB HID usage ids (USB HID Usage Tables, keyboard page 0x07) of the keys GRUB's menu acts on.
HID_KEYS = {0x28: "enter", 0x4A: "home", 0x4D: "end", 0x51: "down", 0x52: "up", 0x29: "escape"}

#: A reader turns a medium's name into a seekable byte stream (and its size), or None when it cannot.
MediaReader = Callable[[str], "tuple[BinaryIO, int] | None"]


@dataclass(frozen=True)
class MenuItem:
    title: str
    kind: EntryKind
    kernel_args: str


@dataclass(frozen=True)
class BootMenu:
    """The menu a machine shows when it boots a medium, and where it came from."""

    items: tuple[MenuItem, ...]
    default: int
    timeout: float
    source: str  # "read from <medium>" or "assumed (…)"
    post_install: str = ""  # what the medium's own config.yaml says: reboot | poweroff | nothing | "" (unknown)

    @classmethod
    def from_info(cls, info: MediaInfo, source: str) -> BootMenu | None:
        if info.menu is None or not info.menu.config.entries:
            return None
        cfg = info.menu.config
        items = tuple(MenuItem(e.title, e.kind, e.kernel_args) for e in cfg.entries)
        default = cfg.default_index if cfg.default_index is not None else 0
        action = ""
        if info.config is not None:
            install = info.config.install
            if "poweroff" in install or "reboot" in install:
                action = "poweroff" if install.get("poweroff") else "reboot" if install.get("reboot") else "nothing"
        return cls(items, default, cfg.timeout if cfg.timeout is not None else 5.0, source, action)

    @classmethod
    def assumed(cls, media: str) -> BootMenu:
        """The appliance ISO's menu (reference §10.1) for a medium the lab cannot read."""
        if media not in MEDIA_CHOICES:
            raise ValueError(f"media must be one of {', '.join(MEDIA_CHOICES)}, not {media!r}")
        args = f"cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs {CONSOLE_PARAMS}"
        items = (
            MenuItem("Palette eXtended Kubernetes Edge Installer", EntryKind.AUTOMATIC, args + " nodepair.enable"),
            MenuItem("Palette eXtended Kubernetes Edge Installer (manual)", EntryKind.MANUAL, args),
            MenuItem(
                "Palette Edge Interactive Installer",
                EntryKind.INTERACTIVE,
                args + " nodepair.enable interactive-install",
            ),
        )
        return cls(items, 2 if media == "interactive" else 0, MENU_TIMEOUT, f"assumed ({media} media)")

    def cmdline(self, index: int) -> str:
        """The kernel command line the entry boots with, as ``/proc/cmdline`` shows it."""
        args = self.items[index].kernel_args
        for name, value in (("consoleparams", CONSOLE_PARAMS), ("videoparams", "")):
            args = args.replace("${" + name + "}", value).replace("$" + name, value)
        return "BOOT_IMAGE=/boot/kernel " + " ".join(args.split())


@dataclass
class MenuState:
    """One boot's GRUB menu: the highlight, whether a key stopped the countdown, and the entry chosen."""

    menu: BootMenu
    shown_at: float  # when the firmware handed over to GRUB
    highlight: int = -1  # -1: the menu's default
    stopped: bool = False
    chosen: int | None = None
    chosen_at: float | None = None
    keys: list[tuple[float, str]] = field(default_factory=list)  # what reached the menu, for the screen and tests

    def __post_init__(self) -> None:
        if self.highlight < 0:
            self.highlight = self.menu.default

    def settle(self, now: float) -> None:
        """Boot the default entry once the countdown ran out (nothing pressed in time)."""
        deadline = self.shown_at + self.menu.timeout
        if self.chosen is None and not self.stopped and now >= deadline:
            self.chosen, self.chosen_at = self.menu.default, deadline

    def remaining(self, now: float) -> float | None:
        if self.chosen is not None or self.stopped:
            return None
        return max(0.0, self.shown_at + self.menu.timeout - now)

    def press(self, key: str, now: float) -> bool:
        """A key arriving at ``now``; False when it did not reach the menu (firmware, or an entry booted)."""
        self.settle(now)
        if now < self.shown_at or self.chosen is not None:
            return False
        self.keys.append((now, key))
        self.stopped = True
        last = len(self.menu.items) - 1
        if key == "up":
            self.highlight = max(0, self.highlight - 1)
        elif key == "down":
            self.highlight = min(last, self.highlight + 1)
        elif key == "home":
            self.highlight = 0
        elif key == "end":
            self.highlight = last
        elif key == "enter":
            self.chosen, self.chosen_at = self.highlight, now
        return True


def key_name(usb_hid_code: int) -> str:
    """The key of a vSphere ``UsbScanCodeSpecKeyEvent.usbHidCode`` (the HID usage id in its upper 16 bits)."""
    return HID_KEYS.get((usb_hid_code >> 16) & 0xFFFF, f"hid-0x{(usb_hid_code >> 16) & 0xFFFF:02x}")


# -- reading a medium --------------------------------------------------------------------------------------------
class RangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file, read in aligned blocks by ``read_range(start, end)`` (inclusive
    end), each block once: reading an ISO's metadata jumps back and forth between a few sectors."""

    BLOCK = 16 * 1024

    def __init__(self, read_range: Callable[[int, int], bytes], size: int, close: Callable[[], None]) -> None:
        super().__init__()
        self._read_range = read_range
        self._size = size
        self._close = close
        self._pos = 0
        self._blocks: dict[int, bytes] = {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            try:
                self._close()
            finally:
                super().close()

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _block(self, index: int) -> bytes:
        if index not in self._blocks:
            start = index * self.BLOCK
            self._blocks[index] = self._read_range(start, min(self._size, start + self.BLOCK) - 1)
        return self._blocks[index]

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._size - self._pos)
        done = 0
        while done < want:
            index, offset = divmod(self._pos, self.BLOCK)
            block = self._block(index)[offset : offset + want - done]
            if not block:
                break
            buffer[done : done + len(block)] = block
            done += len(block)
            self._pos += len(block)
        return done


def range_stream(read_range: Callable[[int, int], bytes], size: int, close: Callable[[], None]) -> BinaryIO:
    """A buffered stream over :class:`RangeFile`, as :func:`~wizard.appliance.media.inspect_stream` reads it."""
    return io.BufferedReader(RangeFile(read_range, size, close), buffer_size=2048)


def open_medium(source: str, fallback: MediaReader | None = None) -> tuple[BinaryIO, int] | None:
    """The medium ``source`` names as a seekable stream and its size, the way firmware reads it."""
    parts = urlsplit(source)
    if parts.scheme == "file" or (not parts.scheme and Path(source).is_file()):
        path = Path(unquote(parts.path)) if parts.scheme == "file" else Path(source)
        if not path.is_file():
            return None
        return path.open("rb"), path.stat().st_size
    if parts.scheme in ("http", "https"):
        # The lab stands for a BMC streaming the image into a machine; BMCs do not check an ISO server's certificate.
        client = httpx.Client(verify=False, timeout=10.0)  # noqa: S501
        try:
            head = client.head(source)
            head.raise_for_status()
            size = int(head.headers.get("content-length", "0"))
        except (httpx.HTTPError, ValueError):
            client.close()
            return None

        def read_range(start: int, end: int) -> bytes:
            r = client.get(source, headers={"Range": f"bytes={start}-{end}"})
            r.raise_for_status()
            return r.content if r.status_code == 206 else r.content[start : end + 1]

        return range_stream(read_range, size, client.close), size
    return fallback(source) if fallback is not None else None


def read_menu(source: str, fallback: MediaReader | None = None) -> tuple[BootMenu | None, str]:
    """The menu of the medium ``source`` names, and a note saying why not when it cannot be read."""
    try:
        opened = open_medium(source, fallback)
    except OSError as exc:
        return None, f"{source} could not be opened: {exc}"
    if opened is None:
        return None, f"{source} cannot be read from the lab"
    stream, size = opened
    try:
        with stream:
            info = inspect_stream(stream, size, Path(urlsplit(source).path or source))
    except (MediaError, httpx.HTTPError, OSError) as exc:
        return None, f"{source} is not a readable ISO: {exc}"
    menu = BootMenu.from_info(info, f"read from {source}")
    return (menu, "") if menu is not None else (None, f"{source} has no GRUB menu")
