"""A lab machine's console as an operator would see it, drawn as a PNG (what vSphere's ``CreateScreenshot_Task``
returns for a VM): the firmware, GRUB's menu with its highlighted entry and countdown, the interactive installer's
disk prompt, the automatic installer's progress, the installed system's Palette TUI.

80×25 text cells of 8×16 pixels (the font in ``data/console-font.txt``), grey on black, the highlighted menu row in
inverse, encoded as an 8-bit greyscale PNG with zlib alone: no imaging library, so the lab runs anywhere.
"""

from __future__ import annotations

import functools
import struct
import zlib
from importlib import resources

from wizard.lab.machine import LIVE_STAGES, Machine, Stage

COLUMNS, ROWS = 80, 25
CELL_W, CELL_H = 8, 16
FOREGROUND, BACKGROUND = 0xC0, 0x00


@functools.cache
def _font() -> dict[int, bytes]:
    text = resources.files("wizard.lab").joinpath("data/console-font.txt").read_text(encoding="ascii")
    glyphs = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            code, rows = line.split()
            glyphs[int(code, 16)] = bytes.fromhex(rows)
    return glyphs


def render_png(lines: list[str], inverse: frozenset[int] = frozenset()) -> bytes:
    """The text ``lines`` (rows ``inverse`` highlighted) as a PNG of 80×25 cells."""
    font = _font()
    blank = font[0x20]
    width, height = COLUMNS * CELL_W, ROWS * CELL_H
    raw = bytearray()
    for row in range(ROWS):
        text = (lines[row] if row < len(lines) else "").ljust(COLUMNS)[:COLUMNS]
        glyphs = [font.get(ord(ch), font.get(ord("?"), blank)) for ch in text]
        fg, bg = (BACKGROUND, FOREGROUND) if row in inverse else (FOREGROUND, BACKGROUND)
        for y in range(CELL_H):
            raw.append(0)  # PNG filter: none
            for glyph in glyphs:
                bits = glyph[y]
                raw.extend(fg if bits & (0x80 >> x) else bg for x in range(CELL_W))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 6))
        + chunk(b"IEND", b"")
    )


def _box(title: str, items: list[str], highlight: int) -> tuple[list[str], set[int]]:
    lines = ["", f"{title:^{COLUMNS}}", "", " +" + "-" * (COLUMNS - 4) + "+"]
    inverse = set()
    for i, item in enumerate(items):
        if i == highlight:
            inverse.add(len(lines))
        lines.append(" |" + f"{('*' if i == highlight else ' ')}{item}"[: COLUMNS - 4].ljust(COLUMNS - 4) + "|")
    lines.extend(" |" + " " * (COLUMNS - 4) + "|" for _ in range(max(0, 10 - len(items))))
    lines.append(" +" + "-" * (COLUMNS - 4) + "+")
    return lines, inverse


def console_screen(machine: Machine, hostname: str = "", address: str = "") -> tuple[list[str], frozenset[int]]:
    """What ``machine``'s console shows now: text rows and the rows drawn in inverse."""
    stage, menu, now = machine.console_state()
    inverse: set[int] = set()
    if stage is Stage.POWERED_OFF:
        return [], frozenset()
    if stage is Stage.NO_BOOT_MEDIA:
        return ["", "  No bootable device found.", "", "  Press any key to retry the boot sequence."], frozenset()
    if stage is Stage.REBOOTING:
        return ["", "  Rebooting."], frozenset()
    if stage is Stage.BOOTING_INSTALLER and menu is not None:
        if now < menu.shown_at:
            return [
                "",
                "  VMware Virtual Platform (EFI)",
                "",
                "  >>> Booting from CD-ROM: the appliance ISO",
            ], frozenset()
        if menu.chosen is None:
            items = [item.title for item in menu.menu.items]
            lines, inverse = _box("GNU GRUB  version 2.06", items, menu.highlight)
            lines.append("")
            lines.append("      Use the Up and Down keys to select which entry is highlighted.")
            lines.append("      Press enter to boot the selected OS, 'e' to edit the commands.")
            left = menu.remaining(now)
            if left is not None:
                lines.append(f"      The highlighted entry will be executed automatically in {int(left + 0.999)}s.")
            return lines, frozenset(inverse)
        title = menu.menu.items[menu.chosen].title
        return ["", f"  Booting '{title}'", "", "  Loading kernel...", "  Loading initrd..."], frozenset()
    if stage is Stage.INSTALLER_WAITING:
        disks = [f"/dev/{name}  {size / 1024**3:.0f} GiB" for name, size in machine.disks]
        lines, inverse = _box(
            "Palette Edge Interactive Installer", ["Select the target disk (it is erased):", *disks], 1
        )
        lines.append("")
        lines.append("      [Enter] select   [Up/Down] move   [Esc] back")
        return lines, frozenset(inverse)
    if stage is Stage.LIVE_SHELL:
        return ["", "  Palette eXtended Kubernetes Edge (live)", "", "  localhost login: _"], frozenset()
    if stage in LIVE_STAGES or stage is Stage.BOOTING_INSTALLER:
        tail = [line.split(" ", 4)[-1] for line in machine.journal(12)]
        return [
            "",
            "  Palette eXtended Kubernetes Edge Installer",
            "",
            *[f"  {t}"[:COLUMNS] for t in tail],
        ], frozenset()
    if stage is Stage.BOOTING_OS:
        return ["", "  Palette eXtended Kubernetes Edge", "", "  Starting services..."], frozenset()
    ui = f"https://{address}:5080" if address else "(starting)"
    return [
        "",
        "  Palette TUI",
        "",
        "  Device Info",
        f"    Host name:  {hostname or machine.name}",
        f"    Local UI:   {ui if machine.local_ui_up else '(starting)'}",
        "",
        "  Press F2 to customise",
    ], frozenset()


def screenshot(machine: Machine, hostname: str = "", address: str = "") -> tuple[tuple[str, ...], bytes]:
    """The console's text (to tell a changed screen) and its PNG."""
    lines, inverse = console_screen(machine, hostname, address)
    return tuple(lines) + tuple(str(i) for i in sorted(inverse)), render_png(lines, inverse)
