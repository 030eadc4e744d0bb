"""Know the appliance media without booting it: what an appliance ISO will do on a machine that boots it.

:func:`inspect_iso` reads, with pycdlib and the small FAT reader beside this module (never the whole ISO):

- the GRUB menu every firmware ends up in: ``/boot/grub2/grub.cfg`` (entries, default, timeout, which entry is the
  automatic installer and which the interactive one — :mod:`wizard.appliance.grub`);
- the volume label (the kernel lines find the live system by ``root=live:CDLABEL=COS_LIVE``, so it must stay);
- the root ``config.yaml`` the build copied from its user-data: management mode, appliance type, install settings;
- embedded content (``/opt/spectrocloud/content/*.zst_part*``, full ISOs before 4.9.36);
- the El Torito boot entries (BIOS, EFI) and, for EFI, the FAT image's own ``grub.cfg``: on AuroraBoot's layout
  (``pkg/constants``: ``GrubEfiCfg``) it ``search``es for ``/boot/kernel``, sets the prefix to ``/boot/grub2`` and
  ``configfile``s ``/boot/grub2/grub.cfg`` — the same menu BIOS machines read. An EFI configuration that carries
  a menu of its own is reported as one more menu (and :mod:`wizard.appliance.unattended` edits it too).

Each configuration comes with the ISO offset of its bytes, so a same-length edit of ``set default=N`` can be made
in place on a streamed copy.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pycdlib
import yaml
from pycdlib.pycdlibexception import PyCdlibException

from wizard.appliance import grub
from wizard.appliance.fat import FatError, FatImage, image_size
from wizard.appliance.grub import EntryKind, GrubConfig
from wizard.core.errors import WizardError

MENU_PATH = "/boot/grub2/grub.cfg"
CONFIG_PATH = "/config.yaml"
CONTENT_DIR = "/opt/spectrocloud/content"
LIVE_LABEL = "COS_LIVE"
#: Where GRUB looks for its configuration when it starts from the EFI image (shim's grub: /EFI/BOOT; the CD grub
#: AuroraBoot prefers: /boot/grub; Ubuntu's grub: /EFI/ubuntu), in the image and, for the CD grub, on the ISO.
EFI_CONFIGS = ("/EFI/BOOT/grub.cfg", "/boot/grub/grub.cfg", "/EFI/ubuntu/grub.cfg")
ISO_EFI_CONFIGS = ("/boot/grub/grub.cfg", "/EFI/BOOT/grub.cfg")
EFI_PLATFORM = 0xEF
PLATFORMS = {0x00: "BIOS", 0x01: "PowerPC", 0x02: "Mac", EFI_PLATFORM: "EFI"}
KEY_LABELS = {"home": "Home", "down": "↓", "up": "↑", "enter": "Enter", "end": "End"}
MAX_SMALL_FILE = 1024 * 1024
MAX_EFI_IMAGE = 64 * 1024 * 1024
SECTOR = 2048


class MediaError(WizardError):
    """The file is not an ISO this reader can make sense of."""


@dataclass(frozen=True)
class BootEntry:
    """One El Torito boot entry."""

    platform_id: int
    bootable: bool
    load_rba: int
    sector_count: int
    media_type: int

    @property
    def platform(self) -> str:
        return PLATFORMS.get(self.platform_id, f"0x{self.platform_id:02X}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "bootable": self.bootable,
            "load_rba": self.load_rba,
            "sectors": self.sector_count,
            "emulation": self.media_type,
        }


@dataclass(frozen=True)
class ConfigFile:
    """A GRUB configuration found on the media, with where its bytes lie in the ISO."""

    where: str  # "iso" (the ISO 9660 file system) or "efi-image" (the El Torito EFI FAT image)
    path: str
    config: GrubConfig
    iso_offsets: tuple[tuple[int, int], ...]  # (ISO offset, length) of the file's bytes, in order

    def iso_offset(self, file_offset: int) -> int:
        seen = 0
        for start, length in self.iso_offsets:
            if file_offset < seen + length:
                return start + file_offset - seen
            seen += length
        raise ValueError(f"offset {file_offset} is past the end of {self.path}")

    @property
    def label(self) -> str:
        return f"{self.path} ({'EFI boot image' if self.where == 'efi-image' else 'ISO'})"

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "path": self.path, **self.config.to_dict()}


@dataclass(frozen=True)
class ApplianceConfig:
    """The ISO's own user-data (its root ``config.yaml``)."""

    raw: dict[str, Any]
    error: str = ""

    @property
    def stylus(self) -> dict[str, Any]:
        value = self.raw.get("stylus")
        return value if isinstance(value, dict) else {}

    @property
    def install(self) -> dict[str, Any]:
        value = self.raw.get("install")
        return value if isinstance(value, dict) else {}

    @property
    def management_mode(self) -> str:
        # ``installationMode`` was removed in 4.8.a in favour of ``managementMode`` (reference §10.1).
        return str(self.stylus.get("managementMode") or self.stylus.get("installationMode") or "")

    @property
    def appliance_type(self) -> str:
        return str(self.stylus.get("applianceType") or "")

    def to_dict(self) -> dict[str, Any]:
        install = self.install
        return {
            "management_mode": self.management_mode,
            "appliance_type": self.appliance_type,
            "install": {k: install[k] for k in sorted(install) if k != "bind_mounts"}
            | ({"bind_mounts": len(install["bind_mounts"])} if isinstance(install.get("bind_mounts"), list) else {}),
            "keys": sorted(str(k) for k in self.raw),
            **({"error": self.error} if self.error else {}),
        }


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    size: int
    label: str
    menu: ConfigFile | None  # /boot/grub2/grub.cfg
    efi_configs: tuple[ConfigFile, ...] = ()  # the EFI boot path's own configurations
    boot_entries: tuple[BootEntry, ...] = ()
    config: ApplianceConfig | None = None
    content: tuple[tuple[str, int], ...] = ()  # embedded content parts: (name, size)
    problems: tuple[str, ...] = field(default_factory=tuple)  # what could not be read, in words

    # -- what the media will do -----------------------------------------------------------------------------
    @property
    def efi(self) -> bool:
        return any(e.platform_id == EFI_PLATFORM for e in self.boot_entries)

    @property
    def bios(self) -> bool:
        return any(e.platform_id == 0 for e in self.boot_entries)

    @property
    def automatic(self) -> grub.MenuEntry | None:
        return self.menu.config.first(EntryKind.AUTOMATIC) if self.menu else None

    @property
    def interactive(self) -> grub.MenuEntry | None:
        return self.menu.config.first(EntryKind.INTERACTIVE) if self.menu else None

    @property
    def default(self) -> grub.MenuEntry | None:
        return self.menu.config.default_entry if self.menu else None

    @property
    def timeout(self) -> float | None:
        return self.menu.config.timeout if self.menu else None

    @property
    def boots_unattended(self) -> bool:
        """Whether a machine that boots this media and nobody touches its console runs the automatic installer
        on every boot path (the menu and each EFI configuration with a menu of its own)."""
        menus = [c for c in self.menus() if c.config.has_menu]
        return bool(menus) and all(
            (d := c.config.default_entry) is not None and d.kind is EntryKind.AUTOMATIC for c in menus
        )

    @property
    def efi_reaches_menu(self) -> bool | None:
        """Whether the EFI boot path ends in ``/boot/grub2/grub.cfg`` (None: no EFI configuration was read)."""
        if not self.efi_configs:
            return None
        return any(MENU_PATH in c.config.chains_to for c in self.efi_configs)

    @property
    def content_embedded(self) -> bool:
        return bool(self.content)

    def console_keys(self) -> list[str]:
        """The keys that pick the automatic installer in GRUB's menu: Home (which also stops the countdown), Down
        to the entry, Enter. Empty when the menu has no automatic entry."""
        automatic = self.automatic
        if automatic is None:
            return []
        return ["home", *["down"] * automatic.index, "enter"]

    def console_guidance(self) -> str:
        """What to do at a node's console so it boots the automatic installer, in words."""
        automatic, default = self.automatic, self.default
        if automatic is None:
            return "this ISO's menu has no automatic installer: answer the interactive installer on the console"
        if default is not None and default.index == automatic.index:
            return f"let GRUB boot its default, {automatic.title!r}"
        wait = f"{self.timeout:g} seconds" if self.timeout is not None else "its countdown"
        keys = " ".join(KEY_LABELS[k] for k in self.console_keys())
        return (
            f"when GRUB's menu appears (it waits {wait}), press {keys} to boot {automatic.title!r} (entry "
            f"{automatic.index}); its default {default.title if default else 'entry'!r} ignores the seed and waits "
            "for the installer's questions"
        )

    def menus(self) -> list[ConfigFile]:
        """Every configuration with a menu a machine may show: the ISO's, then EFI ones that carry their own."""
        found = [self.menu] if self.menu is not None else []
        return found + [c for c in self.efi_configs if c.config.has_menu]

    def summary(self) -> str:
        """One line: what a machine booting this media does when nobody touches its console."""
        entry = self.default
        if self.menu is None or entry is None:
            return "the GRUB menu could not be read: what the media boots is unknown"
        wait = f"after {self.timeout:g} s" if self.timeout is not None else "after GRUB's timeout"
        return f"boots entry {entry.index} {entry.title!r} ({entry.kind.value}) {wait}"

    def to_dict(self) -> dict[str, Any]:
        automatic, interactive = self.automatic, self.interactive
        return {
            "path": str(self.path),
            "size": self.size,
            "label": self.label,
            "label_ok": self.label == LIVE_LABEL,
            "menu": self.menu.to_dict() if self.menu else None,
            "automatic_entry": automatic.index if automatic else None,
            "interactive_entry": interactive.index if interactive else None,
            "boots_unattended": self.boots_unattended,
            "summary": self.summary(),
            "efi_configs": [c.to_dict() for c in self.efi_configs],
            "efi_reaches_menu": self.efi_reaches_menu,
            "el_torito": [e.to_dict() for e in self.boot_entries],
            "uefi": self.efi,
            "bios": self.bios,
            "config": self.config.to_dict() if self.config else None,
            "content": [{"name": n, "size": s} for n, s in self.content],
            "content_embedded": self.content_embedded,
            "problems": list(self.problems),
        }


# -- reading -------------------------------------------------------------------------------------------------
def _names(path: str) -> Iterator[dict[str, str]]:
    """The ways pycdlib may know ``path``: Rock Ridge, Joliet, then plain ISO 9660 names."""
    yield {"rr_path": path}
    yield {"joliet_path": path}
    parts = [p for p in path.strip("/").split("/") if p]
    dirs = [p.upper().replace("-", "_").replace(".", "_") for p in parts[:-1]]
    leaf = parts[-1].upper().replace("-", "_") if parts else ""
    if "." not in leaf:
        leaf += "."
    yield {"iso_path": "/" + "/".join([*dirs, leaf + ";1"])}


def _record(iso: pycdlib.PyCdlib, path: str) -> Any | None:
    for kwargs in _names(path):
        with contextlib.suppress(PyCdlibException, ValueError, KeyError):
            return iso.get_record(**kwargs)
    return None


def _children(iso: pycdlib.PyCdlib, path: str) -> list[tuple[str, Any]]:
    for names in _names(path):
        kwargs = {k: v.removesuffix(".;1").removesuffix(";1") for k, v in names.items()}
        try:
            children = list(iso.list_children(**kwargs))
        except (PyCdlibException, ValueError, KeyError):
            continue
        out = []
        for child in children:
            if child is None or child.is_dot() or child.is_dotdot():
                continue
            if "rr_path" in kwargs and child.rock_ridge is not None:
                name = child.rock_ridge.name().decode("utf-8", "replace")
            elif "joliet_path" in kwargs:
                name = child.file_identifier().decode("utf-16_be", "replace")
            else:
                name = child.file_identifier().decode("ascii", "replace").split(";")[0].rstrip(".").lower()
            out.append((name, child))
        return out
    return []


def _read_extent(fh: BinaryIO, offset: int, length: int) -> bytes:
    fh.seek(offset)
    data = fh.read(length)
    if len(data) != length:
        raise MediaError("ISO truncated", f"the file ends before byte {offset + length}")
    return data


def _iso_file(iso: pycdlib.PyCdlib, fh: BinaryIO, path: str) -> tuple[bytes, int] | None:
    """A small file's bytes and its ISO offset; None when the ISO has no such file."""
    rec = _record(iso, path)
    if rec is None or rec.is_dir():
        return None
    length = int(rec.get_data_length())
    if length > MAX_SMALL_FILE:
        raise MediaError("Unexpected file", f"{path} on the ISO is {length} bytes, far more than a config file")
    offset = int(rec.extent_location()) * iso.logical_block_size
    return _read_extent(fh, offset, length), offset


def _boot_entries(iso: pycdlib.PyCdlib) -> list[BootEntry]:
    catalog = iso.eltorito_boot_catalog
    if catalog is None:
        return []

    def entry(e: Any, platform: int) -> BootEntry:
        return BootEntry(
            platform_id=int(platform),
            bootable=int(e.boot_indicator) == 0x88,
            load_rba=int(e.load_rba),
            sector_count=int(e.sector_count),
            media_type=int(e.boot_media_type),
        )

    out = [entry(catalog.initial_entry, catalog.validation_entry.platform_id)]
    for section in catalog.sections:
        out.extend(entry(e, section.platform_id) for e in section.section_entries)
    return out


def _efi_image(fh: BinaryIO, entry: BootEntry, iso_size: int) -> tuple[FatImage, int]:
    """The FAT file system an EFI boot entry points at, and its ISO offset."""
    offset = entry.load_rba * SECTOR
    if offset + 512 > iso_size:
        raise FatError("the EFI boot entry points past the end of the ISO")
    boot = _read_extent(fh, offset, 512)
    size = image_size(boot)
    if size > MAX_EFI_IMAGE:
        raise FatError(f"the EFI boot image claims {size} bytes")
    size = min(size, iso_size - offset)
    return FatImage(_read_extent(fh, offset, size)), offset


def _efi_configs(fh: BinaryIO, entries: list[BootEntry], iso_size: int, problems: list[str]) -> list[ConfigFile]:
    out: list[ConfigFile] = []
    seen: set[int] = set()
    for entry in entries:
        if entry.platform_id != EFI_PLATFORM or entry.load_rba in seen:
            continue
        seen.add(entry.load_rba)
        try:
            image, base = _efi_image(fh, entry, iso_size)
        except FatError as exc:
            problems.append(f"the EFI boot image at sector {entry.load_rba} could not be read: {exc}")
            continue
        for path in EFI_CONFIGS:
            try:
                found = image.read(path)
            except FatError:
                continue
            extents = tuple((base + start, length) for start, length in found.extents)
            out.append(ConfigFile("efi-image", path, grub.parse(found.data), extents))
        if not any(c.iso_offsets and c.iso_offsets[0][0] >= base for c in out):
            problems.append(f"the EFI boot image at sector {entry.load_rba} holds no grub.cfg")
    return out


def _appliance_config(data: bytes) -> ApplianceConfig:
    try:
        doc = yaml.safe_load(data.decode("utf-8", "replace"))
    except yaml.YAMLError as exc:
        return ApplianceConfig({}, f"config.yaml is not valid YAML: {exc}")
    if doc is None:
        return ApplianceConfig({})
    if not isinstance(doc, dict):
        return ApplianceConfig({}, "config.yaml is not a mapping")
    return ApplianceConfig(doc)


def inspect_iso(path: Path) -> MediaInfo:
    """Read what the appliance ISO at ``path`` will do when it boots; raises :class:`MediaError` when the file is
    not an ISO 9660 image. What cannot be read (no menu, a broken EFI image) is a problem on the result."""
    try:
        size = path.stat().st_size
        fh = path.open("rb")
    except OSError as exc:
        raise MediaError("ISO unreadable", f"{path}: {exc.strerror or exc}", remediation="check the path") from exc
    with fh:
        return inspect_stream(fh, size, path)


def inspect_stream(fh: BinaryIO, size: int, path: Path) -> MediaInfo:
    """:func:`inspect_iso` on any seekable binary stream of ``size`` bytes (``path`` only names it): a lab
    machine reads the medium attached to it this way, over HTTP ranges or a datastore."""
    iso = pycdlib.PyCdlib()
    try:
        iso.open_fp(fh)
    except (PyCdlibException, ValueError, struct.error, OSError) as exc:
        raise MediaError(
            "Not an ISO image",
            f"{path.name} is not an ISO 9660 image ({exc})",
            remediation="choose the appliance ISO downloaded from Spectro Cloud",
        ) from exc
    try:
        return _inspect(iso, fh, path, size)
    finally:
        iso.close()


def _inspect(iso: pycdlib.PyCdlib, fh: BinaryIO, path: Path, size: int) -> MediaInfo:
    problems: list[str] = []
    label = iso.pvd.volume_identifier.decode("ascii", "replace").strip()
    menu = None
    found = _iso_file(iso, fh, MENU_PATH)
    if found is None:
        problems.append(f"the ISO has no {MENU_PATH}: it is not laid out like the appliance ISO")
    else:
        data, offset = found
        menu = ConfigFile("iso", MENU_PATH, grub.parse(data), ((offset, len(data)),))
        if not menu.config.has_menu:
            problems.append(f"{MENU_PATH} has no menu entries")
    entries = _boot_entries(iso)
    efi_configs = _efi_configs(fh, entries, size, problems)
    for iso_path in ISO_EFI_CONFIGS:  # the CD grub may read its configuration from the ISO itself
        found = _iso_file(iso, fh, iso_path)
        if found is not None:
            data, offset = found
            efi_configs.append(ConfigFile("iso", iso_path, grub.parse(data), ((offset, len(data)),)))
    config = None
    found = _iso_file(iso, fh, CONFIG_PATH)
    if found is not None:
        config = _appliance_config(found[0])
        if config.error:
            problems.append(config.error)
    content = tuple(
        sorted(
            (name, int(rec.get_data_length()))
            for name, rec in _children(iso, CONTENT_DIR)
            if ".zst_part" in name and not rec.is_dir()
        )
    )
    if label != LIVE_LABEL:
        problems.append(f"the volume label is {label!r}, not {LIVE_LABEL!r}: the kernel lines look for {LIVE_LABEL}")
    if not any(e.platform_id == EFI_PLATFORM for e in entries):
        problems.append("no El Torito EFI boot entry: the appliance boots with UEFI only")
    return MediaInfo(
        path=path,
        size=size,
        label=label,
        menu=menu,
        efi_configs=tuple(efi_configs),
        boot_entries=tuple(entries),
        config=config,
        content=content,
        problems=tuple(problems),
    )


def render(info: MediaInfo) -> str:
    """``palette-wizard media inspect``'s text."""
    lines = [
        f"{info.path.name}: {info.size:,} bytes, volume label {info.label!r}"
        + ("" if info.label == LIVE_LABEL else f" (expected {LIVE_LABEL})")
    ]
    if info.menu is not None:
        cfg = info.menu.config
        timeout = f"{cfg.timeout:g} s" if cfg.timeout is not None else "not set"
        lines.append(f"GRUB menu {MENU_PATH}: default {cfg.default_raw or '(not set: 0)'}, timeout {timeout}")
        for e in cfg.entries:
            mark = "*" if e.index == cfg.default_index else " "
            note = " (conditional)" if e.conditional else ""
            lines.append(f"  {mark} {e.index}  {e.title}  [{e.kind.value}]{note}")
    lines.append(f"When nobody touches the console it {info.summary()}.")
    automatic = info.automatic
    lines.append(
        f"Automatic installer: entry {automatic.index}" if automatic else "Automatic installer: none on this menu"
    )
    if info.boot_entries:
        lines.append("El Torito: " + ", ".join(f"{e.platform} (sector {e.load_rba})" for e in info.boot_entries))
    else:
        lines.append("El Torito: no boot catalog")
    for c in info.efi_configs:
        if c.config.has_menu:
            lines.append(f"EFI config {c.label}: its own menu, {c.config.to_dict()['default_kind'] or '?'} default")
        elif c.config.chains_to:
            lines.append(f"EFI config {c.label}: loads {', '.join(c.config.chains_to)}")
    if info.config is not None:
        cfg_dict = info.config.to_dict()
        lines.append(
            "config.yaml: management mode "
            + (cfg_dict["management_mode"] or "(not set)")
            + ", appliance type "
            + (cfg_dict["appliance_type"] or "(not set)")
            + ", install "
            + (", ".join(f"{k}={v}" for k, v in cfg_dict["install"].items()) or "(no settings)")
        )
    else:
        lines.append("config.yaml: none at the ISO's root")
    if info.content:
        total = sum(s for _, s in info.content)
        lines.append(f"Embedded content: {len(info.content)} part(s), {total:,} bytes")
    else:
        lines.append("Embedded content: none (a slim ISO: upload the content bundle after linking)")
    lines.extend(f"Problem: {p}" for p in info.problems)
    return "\n".join(lines)


def read_member(path: Path, member: str) -> bytes | None:
    """A small file from the ISO at ``path`` (None when it has none), e.g. ``/config.yaml`` for the seed merge."""
    iso = pycdlib.PyCdlib()
    with path.open("rb") as fh:
        try:
            iso.open_fp(fh)
        except (PyCdlibException, ValueError, struct.error) as exc:
            raise MediaError("Not an ISO image", f"{path.name}: {exc}") from exc
        try:
            found = _iso_file(iso, fh, member)
            return found[0] if found is not None else None
        finally:
            iso.close()


__all__ = [
    "ApplianceConfig",
    "BootEntry",
    "ConfigFile",
    "MediaError",
    "MediaInfo",
    "inspect_iso",
    "inspect_stream",
    "read_member",
    "render",
]
