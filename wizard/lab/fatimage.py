"""A tiny FAT12 image writer for the lab's EFI boot image (``/boot/uefi.img``), in pure Python.

Real appliance ISOs carry a FAT EFI system image made with ``mkfs.vfat`` and ``mcopy`` (AuroraBoot's ``createEFI``);
the rehearsal builds one on any platform without those tools. Only what a boot image needs: 512-byte sectors, one
sector per cluster, two FATs, a fixed root directory, subdirectories, 8.3 names (stored upper case, as mcopy
stores the short name of ``grub.cfg``).
"""

from __future__ import annotations

import struct

SECTOR = 512
ROOT_ENTRIES = 64


def _short_name(name: str) -> bytes:
    base, _, ext = name.upper().partition(".")
    if not base or len(base) > 8 or len(ext) > 3:
        raise ValueError(f"{name!r} is not an 8.3 name")
    return base.ljust(8).encode("ascii") + ext.ljust(3).encode("ascii")


def _entry(name: bytes, attrs: int, cluster: int, size: int) -> bytes:
    return struct.pack("<11sBBBHHHHHHHI", name, attrs, 0, 0, 0, 0, 0, 0, 0, 0, cluster, size)


def fat12_image(files: dict[str, bytes], *, label: str = "EFI_LIVE") -> bytes:
    """A FAT12 file system holding ``files`` (path → bytes, e.g. ``/EFI/BOOT/grub.cfg``)."""
    # The directory tree: every folder with its children.
    tree: dict[str, dict[str, bytes | None]] = {"": {}}
    for path, data in files.items():
        parts = [p for p in path.strip("/").split("/") if p]
        folder = ""
        for part in parts[:-1]:
            child = f"{folder}/{part}"
            tree.setdefault(child, {})
            tree[folder][part] = None
            folder = child
        tree[folder][parts[-1]] = data
    # One cluster per directory (16 entries are plenty here), then each file's clusters.
    folders = [f for f in tree if f]
    if any(len(tree[f]) > SECTOR // 32 - 2 for f in folders):
        raise ValueError("a folder holds too many entries for this writer")
    next_cluster = 2
    first: dict[str, int] = {}
    for folder in folders:
        first[folder] = next_cluster
        next_cluster += 1
    lengths: dict[str, int] = {}
    for folder, children in tree.items():
        for name, content in children.items():
            if content is not None:
                path = f"{folder}/{name}"
                n = max(1, -(-len(content) // SECTOR))
                first[path] = next_cluster if content else 0
                lengths[path] = n if content else 0
                next_cluster += n if content else 0
    clusters = next_cluster - 2 + 16  # some free space, as a real image has
    fat_sectors = -(-((clusters + 2) * 3 // 2 + 1) // SECTOR)
    root_sectors = ROOT_ENTRIES * 32 // SECTOR
    reserved = 1
    total = reserved + 2 * fat_sectors + root_sectors + clusters
    boot = bytearray(SECTOR)
    boot[0:3] = b"\xeb\x3c\x90"
    boot[3:11] = b"PALETTE "
    struct.pack_into(
        "<HBHBHHBHHHII", boot, 11, SECTOR, 1, reserved, 2, ROOT_ENTRIES, total, 0xF8, fat_sectors, 32, 2, 0, 0
    )
    boot[36] = 0x80
    boot[38] = 0x29
    struct.pack_into("<I", boot, 39, 0x50414C45)
    boot[43:54] = label.upper()[:11].ljust(11).encode("ascii")
    boot[54:62] = b"FAT12   "
    boot[510:512] = b"\x55\xaa"
    # The FAT: chains for every cluster in use.
    fat = [0xFF8, 0xFFF] + [0] * clusters
    for folder in folders:
        fat[first[folder]] = 0xFFF
    for path, n in lengths.items():
        start = first[path]
        for i in range(n):
            fat[start + i] = start + i + 1 if i < n - 1 else 0xFFF
    fat_bytes = bytearray(fat_sectors * SECTOR)
    for i, value in enumerate(fat):
        at = i + i // 2
        if i & 1:
            fat_bytes[at] = (fat_bytes[at] & 0x0F) | ((value & 0x0F) << 4)
            fat_bytes[at + 1] = (value >> 4) & 0xFF
        else:
            fat_bytes[at] = value & 0xFF
            fat_bytes[at + 1] = (fat_bytes[at + 1] & 0xF0) | ((value >> 8) & 0x0F)

    # Directories.
    def listing(folder: str, parent: int) -> bytes:
        out = bytearray()
        if folder:
            out += _entry(b".          ", 0x10, first[folder], 0)
            out += _entry(b"..         ", 0x10, parent, 0)
        else:
            out += _entry(label.upper()[:11].ljust(11).encode("ascii"), 0x08, 0, 0)
        for name, content in tree[folder].items():
            path = f"{folder}/{name}"
            if content is None:
                out += _entry(_short_name(name), 0x10, first[path], 0)
            else:
                out += _entry(_short_name(name), 0x20, first[path], len(content))
        return bytes(out)

    image = bytearray(total * SECTOR)
    image[0:SECTOR] = boot
    fat_at = reserved * SECTOR
    image[fat_at : fat_at + len(fat_bytes)] = fat_bytes
    image[fat_at + len(fat_bytes) : fat_at + 2 * len(fat_bytes)] = fat_bytes
    root_at = (reserved + 2 * fat_sectors) * SECTOR
    root = listing("", 0)
    if len(root) > ROOT_ENTRIES * 32:
        raise ValueError("too many entries in the root folder")
    image[root_at : root_at + len(root)] = root
    data_at = root_at + root_sectors * SECTOR

    def cluster_at(cluster: int) -> int:
        return data_at + (cluster - 2) * SECTOR

    for folder in folders:
        parent_folder = folder.rsplit("/", 1)[0]
        parent = first.get(parent_folder, 0) if parent_folder else 0
        raw = listing(folder, parent)
        at = cluster_at(first[folder])
        image[at : at + len(raw)] = raw
    for folder, children in tree.items():
        for name, content in children.items():
            if content:
                at = cluster_at(first[f"{folder}/{name}"])
                image[at : at + len(content)] = content
    return bytes(image)
