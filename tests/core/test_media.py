"""Knowing the appliance media: the GRUB parser, the FAT reader, ``inspect_iso`` and the in-place default edit."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizard.appliance import grub
from wizard.appliance.fat import FatError, FatImage
from wizard.appliance.grub import EntryKind
from wizard.appliance.media import MediaError, inspect_iso
from wizard.appliance.unattended import patches_for
from wizard.lab.artifacts import APPLIANCE_CONFIG, appliance_iso, appliance_menu
from wizard.lab.fatimage import fat12_image

OTHER_MENU = """set timeout=10
set default=0
menuentry "Kairos Live Installer" --class os { linux /boot/kernel cdroot install-mode }
menuentry "Memory test" { linux16 /boot/memtest }
"""


def test_the_appliance_menu_is_read_as_the_docs_describe_it() -> None:
    cfg = grub.parse(appliance_menu().encode())
    assert [(e.index, e.kind) for e in cfg.entries] == [
        (0, EntryKind.AUTOMATIC),
        (1, EntryKind.MANUAL),
        (2, EntryKind.INTERACTIVE),
    ]
    assert cfg.entries[2].title == "Palette Edge Interactive Installer"
    assert "interactive-install" in cfg.entries[2].kernel_args and "cdroot" in cfg.entries[0].kernel_args
    assert cfg.default_raw == "2" and cfg.default_index == 2 and cfg.timeout == 5
    # The EFI-only "Text mode" hidden entry is not numbered; the console settings inside `if` are not top level.
    assert len(cfg.entries) == 3 and cfg.chains_to == ()


@pytest.mark.parametrize(
    ("line", "index", "expected"),
    [
        ("set default=2", 0, b"set default=0"),
        ('set default="2"', 0, b'set default="0"'),
        ("set default=12", 3, b"set default=03"),
        ('set default="Palette Edge Interactive Installer"', 0, b"set default=0" + b" " * 35),
    ],
)
def test_default_is_edited_in_place_with_the_same_length(line: str, index: int, expected: bytes) -> None:
    entries = "".join(f'menuentry "Installer {i}" {{\n linux /k\n}}\n' for i in range(13))
    entries = entries.replace('"Installer 2"', '"Palette Edge Interactive Installer"')
    data = f"{line}\nset timeout=5\n{entries}".encode()
    cfg = grub.parse(data)
    edits = grub.default_edit(cfg, index)
    out = bytearray(data)
    for offset, old, new in edits:
        assert len(old) == len(new) and out[offset : offset + len(old)] == old
        out[offset : offset + len(new)] = new
    assert bytes(out).splitlines()[0] == expected
    assert grub.parse(bytes(out)).default_index == index


def test_conditional_and_chained_configs() -> None:
    cfg = grub.parse(
        b"search --file --set=root /boot/kernel\nset prefix=($root)/boot/grub2\nconfigfile $prefix/grub.cfg\n"
    )
    assert not cfg.has_menu and cfg.chains_to == ("/boot/grub2/grub.cfg",)
    cond = grub.parse(b'if [ x = x ]; then\nset default=1\nmenuentry "A install" {\n}\nfi\nmenuentry "B" {\n}\n')
    assert [e.conditional for e in cond.entries] == [True, False]
    assert cond.default_raw is None and cond.default_index == 0  # a conditional default is not the top-level one
    with pytest.raises(ValueError, match="sets no default"):
        grub.default_edit(cond, 1)


def test_fat_reader_finds_files_and_their_bytes() -> None:
    big = bytes(range(256)) * 9  # several clusters
    image = fat12_image({"/EFI/BOOT/grub.cfg": b"configfile /boot/grub2/grub.cfg\n", "/EFI/BOOT/BIG.BIN": big})
    fat = FatImage(image)
    found = fat.read("/efi/boot/GRUB.CFG")
    assert found.data == b"configfile /boot/grub2/grub.cfg\n"
    data = fat.read("/EFI/BOOT/BIG.BIN")
    assert data.data == big and len(data.extents) > 1
    assert image[data.image_offset(1000)] == big[1000]
    with pytest.raises(FatError):
        fat.read("/EFI/BOOT/missing.cfg")
    with pytest.raises(FatError):
        FatImage(bytes(1024))


def test_inspect_reads_the_rehearsal_iso(tmp_path: Path) -> None:
    info = inspect_iso(appliance_iso(tmp_path / "a.iso", content_parts=2))
    assert info.label == "COS_LIVE" and info.efi and info.bios
    assert info.default is not None and info.default.kind is EntryKind.INTERACTIVE and info.timeout == 5
    assert info.automatic is not None and info.automatic.index == 0
    assert not info.boots_unattended and info.efi_reaches_menu is True
    assert info.config is not None and info.config.management_mode == "local"
    assert info.config.appliance_type == "palette" and info.config.install["poweroff"] is True
    assert [n for n, _ in info.content] == ["core-content.zst_part00", "core-content.zst_part01"]
    assert info.problems == ()
    doc = info.to_dict()
    assert doc["automatic_entry"] == 0 and doc["interactive_entry"] == 2 and doc["content_embedded"]
    assert [e["platform"] for e in doc["el_torito"]] == ["BIOS", "EFI"]


def test_inspect_reports_another_menu_and_label(tmp_path: Path) -> None:
    iso = appliance_iso(tmp_path / "o.iso", volume_id="OTHER_LABEL", menu=OTHER_MENU, config={}, bios=False)
    info = inspect_iso(iso)
    assert info.label == "OTHER_LABEL" and info.config is None and not info.bios and info.efi
    assert info.interactive is None and info.default is not None and info.default.kind is EntryKind.AUTOMATIC
    assert info.boots_unattended and info.timeout == 10
    assert any("COS_LIVE" in p for p in info.problems)
    assert patches_for(info) == []  # nothing to change: it boots its automatic installer already


def test_efi_image_with_its_own_menu_is_a_menu_too(tmp_path: Path) -> None:
    own = appliance_menu(default=2).encode()
    iso = appliance_iso(tmp_path / "e.iso", efi_config=own.decode())
    info = inspect_iso(iso)
    own_menus = [c for c in info.efi_configs if c.config.has_menu]
    assert own_menus and all(c.config.default_index == 2 for c in own_menus)
    assert info.efi_reaches_menu is False
    patches = patches_for(info)
    # The ISO's menu and every EFI copy (two in the FAT image, two on the ISO) get the same one-byte edit.
    assert len(patches) == 1 + len(own_menus) and all(p.old == b"2" and p.new == b"0" for p in patches)
    with iso.open("rb") as fh:
        for p in patches:
            fh.seek(p.offset)
            assert fh.read(len(p.old)) == p.old


def test_no_automatic_entry_cannot_be_made_unattended(tmp_path: Path) -> None:
    menu = 'set default=0\nmenuentry "Palette Edge Interactive Installer" {\n linux /k interactive-install\n}\n'
    info = inspect_iso(appliance_iso(tmp_path / "i.iso", menu=menu))
    with pytest.raises(MediaError, match="no automatic installer entry"):
        patches_for(info)


def test_not_an_iso_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.iso"
    junk.write_bytes(b"not an iso" * 1000)
    with pytest.raises(MediaError, match="not an ISO 9660 image"):
        inspect_iso(junk)


def test_appliance_config_default_is_the_documented_shape() -> None:
    assert APPLIANCE_CONFIG["stylus"]["managementMode"] == "local"
    assert APPLIANCE_CONFIG["install"]["poweroff"] is True
