"""Just enough of FAT12/16/32 to read a file out of an El Torito EFI boot image and say where its bytes lie.

The appliance ISO's UEFI boot path starts in a small FAT image (AuroraBoot's ``/boot/uefi.img``, appended to the
ISO as a partition the El Torito EFI entry points at). Its ``/EFI/BOOT/grub.cfg`` decides which menu UEFI machines
see. Reading it needs no mount and no extra package: the boot sector, the FAT and the directory entries are all
that is needed. Long file names are skipped; names are matched on their 8.3 form, case-insensitively (``grub.cfg``
is stored as ``GRUB    CFG`` whatever tool wrote it).

Each file comes with its extents (image offset, length) so a caller can locate a byte of the file in the image,
and from there in the ISO.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ATTR_DIRECTORY = 0x10
ATTR_VOLUME = 0x08
ATTR_LFN = 0x0F


class FatError(ValueError):
    """The image is not a FAT file system this reader understands, or a path is not in it."""


@dataclass(frozen=True)
class FatFile:
    path: str
    data: bytes
    extents: tuple[tuple[int, int], ...]  # (offset in the image, length), in file order

    def image_offset(self, file_offset: int) -> int:
        """Where byte ``file_offset`` of the file lies in the image."""
        seen = 0
        for start, length in self.extents:
            if file_offset < seen + length:
                return start + (file_offset - seen)
            seen += length
        raise FatError(f"offset {file_offset} is past the end of {self.path}")


@dataclass(frozen=True)
class _Layout:
    sector: int
    cluster: int  # bytes per cluster
    fat_offset: int
    fat_bits: int
    root_offset: int  # FAT12/16: the fixed root directory; FAT32: 0
    root_entries: int
    root_cluster: int  # FAT32 only
    data_offset: int
    clusters: int
    size: int  # the file system's size in bytes, from its boot sector


def image_size(boot_sector: bytes) -> int:
    """The file system's size in bytes as its boot sector states it (to know how much of an image to read)."""
    return _layout(boot_sector).size


def _layout(boot: bytes) -> _Layout:
    if len(boot) < 512 or boot[510:512] != b"\x55\xaa":
        raise FatError("no FAT boot sector (missing 0x55AA signature)")
    sector, per_cluster, reserved, fats, root_entries, total16, _media, fat16 = struct.unpack_from(
        "<HBHBHHBH", boot, 11
    )
    total32 = struct.unpack_from("<I", boot, 32)[0]
    if sector not in (512, 1024, 2048, 4096) or per_cluster == 0 or fats == 0:
        raise FatError("implausible FAT boot sector values")
    fat_sectors = fat16 or struct.unpack_from("<I", boot, 36)[0]
    total = total16 or total32
    root_sectors = (root_entries * 32 + sector - 1) // sector
    data_start = reserved + fats * fat_sectors + root_sectors
    clusters = (total - data_start) // per_cluster
    if clusters < 4085:
        bits = 12
    elif clusters < 65525:
        bits = 16
    else:
        bits = 32
    root_cluster = struct.unpack_from("<I", boot, 44)[0] if bits == 32 else 0
    return _Layout(
        sector=sector,
        cluster=sector * per_cluster,
        fat_offset=reserved * sector,
        fat_bits=bits,
        root_offset=(reserved + fats * fat_sectors) * sector if bits != 32 else 0,
        root_entries=root_entries,
        root_cluster=root_cluster,
        data_offset=data_start * sector,
        clusters=clusters,
        size=total * sector,
    )


class FatImage:
    """A FAT file system held in memory (EFI boot images are a few MiB)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.layout = _layout(data[:512])
        if len(data) < self.layout.data_offset:
            raise FatError("the image is shorter than its boot sector says")

    def _next(self, cluster: int) -> int:
        lay, d = self.layout, self.data
        if lay.fat_bits == 12:
            at = lay.fat_offset + cluster + cluster // 2
            pair = struct.unpack_from("<H", d, at)[0]
            value = pair >> 4 if cluster & 1 else pair & 0xFFF
            return value if value < 0xFF8 else -1
        if lay.fat_bits == 16:
            value = struct.unpack_from("<H", d, lay.fat_offset + cluster * 2)[0]
            return value if value < 0xFFF8 else -1
        value = struct.unpack_from("<I", d, lay.fat_offset + cluster * 4)[0] & 0x0FFFFFFF
        return value if value < 0x0FFFFFF8 else -1

    def _chain(self, first: int) -> list[tuple[int, int]]:
        lay = self.layout
        out: list[tuple[int, int]] = []
        cluster, seen = first, set()
        while 2 <= cluster < lay.clusters + 2:
            if cluster in seen:
                raise FatError("the FAT has a loop")
            seen.add(cluster)
            out.append((lay.data_offset + (cluster - 2) * lay.cluster, lay.cluster))
            cluster = self._next(cluster)
        return out

    def _entries(self, extents: list[tuple[int, int]]) -> list[tuple[str, int, int, int]]:
        """(8.3 name, attributes, first cluster, size) of each entry in a directory's extents."""
        out: list[tuple[str, int, int, int]] = []
        for start, length in extents:
            for at in range(start, start + length, 32):
                raw = self.data[at : at + 32]
                if len(raw) < 32 or raw[0] == 0:
                    return out
                if raw[0] == 0xE5 or raw[11] == ATTR_LFN or raw[11] & ATTR_VOLUME:
                    continue
                base = raw[0:8].decode("latin-1").rstrip()
                ext = raw[8:11].decode("latin-1").rstrip()
                name = f"{base}.{ext}" if ext else base
                high, low = struct.unpack_from("<H", raw, 20)[0], struct.unpack_from("<H", raw, 26)[0]
                size = struct.unpack_from("<I", raw, 28)[0]
                out.append((name, raw[11], (high << 16) | low, size))
        return out

    def _root(self) -> list[tuple[int, int]]:
        lay = self.layout
        if lay.fat_bits == 32:
            return self._chain(lay.root_cluster)
        return [(lay.root_offset, lay.root_entries * 32)]

    def read(self, path: str) -> FatFile:
        """The file at ``path`` (``/EFI/BOOT/grub.cfg``); raises :class:`FatError` when it is not there."""
        parts = [p for p in path.strip("/").split("/") if p]
        extents = self._root()
        for i, part in enumerate(parts):
            match = next((e for e in self._entries(extents) if e[0].upper() == part.upper()), None)
            if match is None:
                raise FatError(f"{path} not found in the FAT image")
            name, attrs, first, size = match
            last = i == len(parts) - 1
            if not last:
                if not attrs & ATTR_DIRECTORY:
                    raise FatError(f"{name} in {path} is not a directory")
                extents = self._chain(first)
                continue
            if attrs & ATTR_DIRECTORY:
                raise FatError(f"{path} is a directory")
            chain = self._chain(first) if size else []
            pieces: list[tuple[int, int]] = []
            left = size
            for start, length in chain:
                take = min(length, left)
                if take <= 0:
                    break
                pieces.append((start, take))
                left -= take
            if left:
                raise FatError(f"{path} is shorter in the FAT than its size says")
            data = b"".join(self.data[s : s + n] for s, n in pieces)
            return FatFile(path, data, tuple(pieces))
        raise FatError(f"{path} names the root directory")

    def exists(self, path: str) -> bool:
        try:
            self.read(path)
        except FatError:
            return False
        return True
