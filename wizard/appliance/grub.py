"""Reading a GRUB configuration the way the appliance ISO uses it: its menu entries, default and timeout.

The appliance ISO's menu (reference §5.1, §10.1; CanvOS ``overlay/files-iso/boot/grub2/grub.cfg``) has three
entries in this order: 0 "Palette eXtended Kubernetes Edge Installer" (the automatic installer), 1 "... Installer
(manual)" (a live shell), 2 "Palette Edge Interactive Installer" (the same kernel line plus ``interactive-install``);
``set default=N`` picks one (2 on appliance builds), ``set timeout=5`` gives the operator five seconds.

Entries are classified from what the public material says distinguishes them, not from their position:

- *interactive*: the kernel line carries ``interactive-install``;
- *manual*: the title ends in "(manual)";
- *automatic*: any other entry whose title names an installer;
- *other*: everything else (a "Text mode" hidden entry, a memory test).

The parser is deliberately small: top-level ``set default=``/``set timeout=`` lines, ``menuentry``/``submenu``
blocks (their kernel line), ``hiddenentry`` blocks (not numbered, as GRUB does not count them for ``default``), and
``if … fi`` blocks (entries inside count, marked conditional). It also records where each ``set default`` value lies
in the file, so a same-length edit can change it in place, and where a chaining config (``configfile``/``source``)
sends GRUB.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from enum import StrEnum


class EntryKind(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"
    INTERACTIVE = "interactive"
    OTHER = "other"


INTERACTIVE_ARG = "interactive-install"


@dataclass(frozen=True)
class MenuEntry:
    index: int
    title: str
    kernel_args: str
    kind: EntryKind
    conditional: bool = False  # inside an ``if``: present only when its condition holds

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "title": self.title,
            "kind": self.kind.value,
            "kernel_args": self.kernel_args,
            "conditional": self.conditional,
        }


@dataclass(frozen=True)
class ValueSpan:
    """Where a ``set NAME=VALUE`` value lies in the file's bytes (quotes excluded)."""

    start: int
    end: int
    value: str
    quoted: bool


@dataclass(frozen=True)
class GrubConfig:
    """One GRUB configuration file: a menu, a chain to another file, or both."""

    data: bytes
    entries: tuple[MenuEntry, ...]
    default_raw: str | None  # the last top-level ``set default`` value; None when the file sets none (GRUB: 0)
    default_spans: tuple[ValueSpan, ...]
    timeout: float | None
    chains_to: tuple[str, ...]  # files a ``configfile``/``source`` line loads, with variables expanded

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    @property
    def has_menu(self) -> bool:
        return bool(self.entries)

    @property
    def default_index(self) -> int | None:
        """The entry GRUB boots after the timeout; None when the value is not a number or a known title."""
        raw = self.default_raw
        if raw is None:
            return 0 if self.entries else None
        if raw.isdigit():
            index = int(raw)
            return index if index < len(self.entries) else None
        for entry in self.entries:
            if entry.title == raw:
                return entry.index
        return None

    @property
    def default_entry(self) -> MenuEntry | None:
        index = self.default_index
        return self.entries[index] if index is not None else None

    def first(self, kind: EntryKind) -> MenuEntry | None:
        return next((e for e in self.entries if e.kind is kind), None)

    def to_dict(self) -> dict[str, object]:
        default = self.default_entry
        return {
            "entries": [e.to_dict() for e in self.entries],
            "default": self.default_raw,
            "default_index": self.default_index,
            "default_kind": default.kind.value if default else None,
            "timeout": self.timeout,
            "chains_to": list(self.chains_to),
        }


def classify(title: str, kernel_args: str) -> EntryKind:
    if INTERACTIVE_ARG in kernel_args.split():
        return EntryKind.INTERACTIVE
    lowered = title.lower()
    if "(manual)" in lowered:
        return EntryKind.MANUAL
    if "install" in lowered:
        return EntryKind.AUTOMATIC
    return EntryKind.OTHER


_SET = re.compile(rb"""^[ \t]*set[ \t]+([A-Za-z_]+)[ \t]*=[ \t]*("([^"\n]*)"|'([^'\n]*)'|([^\s;#]*))""")
_KERNEL_COMMANDS = ("linux", "linuxefi", "linux16", "$linux", "${linux}")


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split()


def _braces(line: str) -> int:
    """Opening minus closing braces outside quotes."""
    depth, quote = 0, ""
    for ch in line:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
    return depth


def _expand(value: str, variables: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        return variables.get(m.group(1) or m.group(2), "")

    expanded = re.sub(r"\$\{([A-Za-z_]+)\}|\$([A-Za-z_]+)", sub, value)
    return re.sub(r"^\([^)]*\)", "", expanded)  # a device prefix such as ($root) names where, not what


def parse(data: bytes) -> GrubConfig:
    """Parse a GRUB configuration file's bytes."""
    entries: list[MenuEntry] = []
    spans: list[ValueSpan] = []
    variables: dict[str, str] = {}
    chains: list[str] = []
    timeout: float | None = None
    default_raw: str | None = None
    block: dict[str, object] | None = None  # the menu entry being read
    depth = 0  # braces inside the current block
    ifs = 0
    offset = 0
    for raw_line in data.splitlines(keepends=True):
        line_start = offset
        offset += len(raw_line)
        line = raw_line.decode("utf-8", "replace").rstrip("\r\n")
        stripped = line.strip()
        if block is not None:
            words = _words(stripped)
            if words and words[0] in _KERNEL_COMMANDS and not block["args"]:
                block["args"] = " ".join(words[2:])
            depth += _braces(stripped)
            if depth <= 0:
                if not block["hidden"]:
                    title = str(block["title"])
                    args = str(block["args"])
                    entries.append(
                        MenuEntry(len(entries), title, args, classify(title, args), conditional=bool(block["cond"]))
                    )
                block = None
            continue
        if not stripped or stripped.startswith("#"):
            continue
        words = _words(stripped)
        if not words:
            continue
        head = words[0]
        if head in ("menuentry", "submenu", "hiddenentry"):
            title = words[1] if len(words) > 1 else ""
            block = {"title": title, "args": "", "hidden": head == "hiddenentry", "cond": ifs > 0}
            depth = _braces(stripped)
            if depth <= 0 and "{" in stripped:  # a one-line entry
                entries.append(MenuEntry(len(entries), title, "", classify(title, ""), conditional=ifs > 0))
                block = None
            continue
        if head == "if":
            ifs += 1
        elif head == "fi":
            ifs = max(0, ifs - 1)
        m = _SET.match(raw_line)
        if m:
            name = m.group(1).decode()
            quoted = m.group(3) is not None or m.group(4) is not None
            group = 3 if m.group(3) is not None else 4 if m.group(4) is not None else 5
            value = m.group(group).decode("utf-8", "replace")
            if ifs == 0:
                variables[name] = value
            if name == "default" and ifs == 0:
                default_raw = value
                spans.append(ValueSpan(line_start + m.start(group), line_start + m.end(group), value, quoted))
            elif name == "timeout" and ifs == 0:
                try:
                    timeout = float(value)
                except ValueError:
                    timeout = None
            continue
        if head in ("configfile", "source") and len(words) > 1:
            chains.append(_expand(words[1], variables))
    return GrubConfig(
        data=bytes(data),
        entries=tuple(entries),
        default_raw=default_raw,
        default_spans=tuple(spans),
        timeout=timeout,
        chains_to=tuple(chains),
    )


def default_edit(config: GrubConfig, index: int) -> list[tuple[int, bytes, bytes]]:
    """The same-length byte edits that make ``index`` the default: (offset in the file, old bytes, new bytes).

    A number is replaced by the entry's number padded with leading zeros (GRUB reads ``00`` as 0); a title (with
    its quotes) by the number and trailing blanks, which end the word. Raises ValueError where no same-length edit
    exists (no ``set default`` line while the default is not ``index`` already)."""
    if config.default_index == index and config.default_spans:
        return []
    if not config.default_spans:
        if index == 0:
            return []  # no ``set default``: GRUB boots entry 0 already
        raise ValueError("the menu sets no default, so the automatic entry cannot be chosen by an in-place edit")
    edits = []
    data = config.data
    number = str(index)
    for span in config.default_spans:
        start, end = span.start, span.end
        if span.value.isdigit():
            new = number.rjust(end - start, "0")  # quotes (if any) stay where they are
        else:
            if span.quoted:  # a title: the quotes go too, the number and trailing blanks fill their place
                start, end = start - 1, end + 1
            new = number.ljust(end - start)
        if len(new) != end - start:
            raise ValueError(f"'set default={span.value}' is too short to hold {number} in place")
        edits.append((start, data[start:end], new.encode()))
    return edits
