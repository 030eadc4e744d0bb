"""The unattended copy of the appliance ISO: the same bytes, except that GRUB's default is the automatic installer.

Appliance ISOs ship with ``set default=2`` (the interactive installer, reference §10.1), which reads no configuration
on the appliance's Kairos version: a node booted from it waits at the installer's disk prompt, whatever seed is
attached. Entry 0, the automatic installer, honours a NoCloud ``cidata`` seed — Spectro's own unattended builds
boot it. So the wizard makes a copy whose menu defaults to the automatic entry:

- only the value bytes of ``set default=N`` change, with the same length (``2`` → ``0``), in every menu a machine
  may read (``/boot/grub2/grub.cfg``; an EFI image's own menu too, where it has one — on AuroraBoot's layout the EFI
  image only chains to ``/boot/grub2/grub.cfg``, see :mod:`wizard.appliance.media`). Every other byte is the
  original's: the volume label ``COS_LIVE`` the kernel lines look for, the El Torito catalog and images, every file;
- the copy is streamed (4 MiB at a time, never the whole ISO in memory) with byte progress and cancellation
  between chunks; the edits are applied as their bytes pass, and the bytes they replace are checked on the way;
- the source's sha256 is computed during the copy and must equal the verified one (the signature is checked before
  anything is derived: :func:`verified_digest`), so a file changed after verification yields nothing;
- the result is checked by reading it back (it boots unattended, same label and El Torito entries) and recorded in
  a small cache index by the source's sha256, so a rerun reuses it instead of copying gigabytes again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wizard.appliance import grub
from wizard.appliance.grub import EntryKind
from wizard.appliance.media import MediaError, MediaInfo, inspect_iso
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.fsutil import atomic_write_text
from wizard.core.integrity import CHUNK, FileDigest, hash_file, load_public_key, verify_signature
from wizard.core.jobs import Job
from wizard.core.progress import Reporter

INDEX = "derived.json"
_index_lock = threading.Lock()
_copy_locks: dict[str, threading.Lock] = {}  # one copy of a given output at a time; the next caller reuses it


@dataclass(frozen=True)
class Patch:
    """One same-length edit of the ISO's bytes."""

    offset: int
    old: bytes
    new: bytes
    where: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "old": self.old.decode("latin-1"),
            "new": self.new.decode("latin-1"),
            "where": self.where,
        }


@dataclass(frozen=True)
class Derived:
    path: Path
    source_sha256: str
    sha256: str
    size: int
    patches: tuple[Patch, ...]
    reused: bool = False
    unchanged: bool = False  # the source already boots unattended: it is used as it is

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "source_sha256": self.source_sha256,
            "size": self.size,
            "patches": [p.to_dict() for p in self.patches],
            "reused": self.reused,
            "unchanged": self.unchanged,
        }


def patches_for(info: MediaInfo) -> list[Patch]:
    """The edits that make every menu on the media default to its automatic installer; raises
    :class:`MediaError` (with the reason in words) where that cannot be done in place."""
    if info.menu is None:
        raise MediaError(
            "No GRUB menu",
            f"{info.path.name} has no /boot/grub2/grub.cfg, so it is not laid out like the appliance ISO",
            remediation="use the appliance ISO from Artifact Studio, or boot with appliance.boot: console",
        )
    out: list[Patch] = []
    for config in info.menus():
        automatic = config.config.first(EntryKind.AUTOMATIC)
        if automatic is None:
            raise MediaError(
                "No automatic installer",
                f"{config.label} has no automatic installer entry (its entries: "
                + ", ".join(f"{e.index} {e.title!r} [{e.kind.value}]" for e in config.config.entries)
                + ")",
                remediation="this ISO can only install interactively: use appliance.boot: console (and answer the "
                "installer at each node's console)",
            )
        try:
            edits = grub.default_edit(config.config, automatic.index)
        except ValueError as exc:
            raise MediaError(
                "Menu cannot be changed in place",
                f"{config.label}: {exc}",
                remediation="use appliance.boot: keys (vSphere) or console",
            ) from exc
        for offset, old, new in edits:
            # A file in the EFI image may cross a cluster boundary: one patch per contiguous run of bytes.
            for i in range(len(old)):
                at = config.iso_offset(offset + i)
                last = out[-1] if out else None
                if last is not None and last.where == config.label and last.offset + len(last.old) == at:
                    out[-1] = Patch(last.offset, last.old + old[i : i + 1], last.new + new[i : i + 1], last.where)
                else:
                    out.append(Patch(at, old[i : i + 1], new[i : i + 1], config.label))
    return out


def verified_digest(
    source: Path,
    signature: Path | None,
    public_key: Path | None,
    report: Reporter | None = None,
    cancel: CancelToken | None = None,
) -> FileDigest:
    """The source's digest, after its signature was checked with the project's key (``openssl dgst -sha256
    -verify`` semantics). Raises a :class:`WizardError` saying what is missing or wrong."""
    if signature is None or not signature.is_file():
        raise WizardError(
            "ISO signature missing",
            f"no signature file for {source.name} (looked for {source.name}.sig.bin)",
            remediation="download the ISO's .sig.bin from Artifact Studio and put it beside the ISO; an unattended "
            "copy is only made from a verified ISO",
        )
    if public_key is None:
        raise WizardError(
            "Public key missing",
            "the ISO's signature cannot be checked without spectro_public_key.pem",
            remediation="give files.public_key (or --public-key)",
        )
    key = load_public_key(public_key)
    digest = hash_file(source, report, cancel)
    try:
        sig = signature.read_bytes()
    except OSError as exc:
        raise WizardError("Signature unreadable", f"{signature}: {exc.strerror or exc}") from exc
    verify_signature(key, digest.digest, sig, what=source.name)
    return digest


# -- the cache index ----------------------------------------------------------------------------------------------
def _stat_key(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _read_index(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cached(folder: Path, source_sha256: str, out: Path | None = None) -> Derived | None:
    """The derived copy recorded for ``source_sha256`` (at ``out`` when given), if its file is still the one
    recorded (same size and modification time)."""
    with _index_lock:
        entry = _read_index(folder).get(source_sha256)
    if not isinstance(entry, dict):
        return None
    path = Path(str(entry.get("path", "")))
    if out is not None and path.resolve() != out.resolve():
        return None
    if _stat_key(path) != entry.get("stat"):
        return None
    return Derived(
        path=path,
        source_sha256=source_sha256,
        sha256=str(entry["sha256"]),
        size=int(entry["size"]),
        patches=tuple(
            Patch(int(p["offset"]), str(p["old"]).encode("latin-1"), str(p["new"]).encode("latin-1"), str(p["where"]))
            for p in entry.get("patches", [])
        ),
        reused=True,
    )


def _record(folder: Path, derived: Derived) -> None:
    with _index_lock:
        index = _read_index(folder)
        index[derived.source_sha256] = {**derived.to_dict(), "stat": _stat_key(derived.path)}
        atomic_write_text(folder / INDEX, json.dumps(index, indent=2, sort_keys=True), mode=0o644)


# -- the copy -----------------------------------------------------------------------------------------------------
def _apply(chunk: bytearray, at: int, patches: list[Patch]) -> None:
    """Apply the parts of ``patches`` that fall into ``chunk`` (which starts at ISO offset ``at``)."""
    end = at + len(chunk)
    for p in patches:
        lo, hi = max(p.offset, at), min(p.offset + len(p.new), end)
        if lo >= hi:
            continue
        want = p.old[lo - p.offset : hi - p.offset]
        if bytes(chunk[lo - at : hi - at]) != want:
            raise WizardError(
                "ISO changed",
                f"the bytes at offset {lo} are not the ones read before the copy began ({p.where})",
                remediation="the ISO changed while it was copied; wait until the download has finished and retry",
            )
        chunk[lo - at : hi - at] = p.new[lo - p.offset : hi - p.offset]


def _same_boot(source: MediaInfo, derived: MediaInfo) -> str:
    """What differs between two ISOs' labels and El Torito entries ("" when nothing)."""
    if source.label != derived.label:
        return f"the label changed from {source.label!r} to {derived.label!r}"
    if [e.to_dict() for e in source.boot_entries] != [e.to_dict() for e in derived.boot_entries]:
        return "the El Torito entries changed"
    if not derived.boots_unattended:
        return "the copy does not boot the automatic installer"
    return ""


def derive_unattended(
    source: Path,
    out: Path,
    *,
    expected_sha256: str,
    cache: Path,
    report: Reporter | None = None,
    cancel: CancelToken | None = None,
) -> Derived:
    """Write (or reuse) the unattended copy of ``source`` at ``out``. ``expected_sha256`` is the verified digest
    of the source; the copy is refused when the source streamed differs from it. Thread-safe: a second caller for
    the same ``out`` waits for the first and reuses its copy."""
    with _index_lock:
        lock = _copy_locks.setdefault(str(out.resolve()), threading.Lock())
    with lock:
        return _derive(source, out, expected_sha256=expected_sha256, cache=cache, report=report, cancel=cancel)


def _derive(
    source: Path,
    out: Path,
    *,
    expected_sha256: str,
    cache: Path,
    report: Reporter | None,
    cancel: CancelToken | None,
) -> Derived:
    cancel = cancel or CancelToken()
    expected = expected_sha256.lower()
    info = inspect_iso(source)
    if info.boots_unattended:
        size = source.stat().st_size
        if report is not None:
            report.finish(f"{source.name} already boots its automatic installer: used as it is")
        return Derived(source, expected, expected, size, (), unchanged=True)
    found = cached(cache, expected, out)
    if found is not None:
        if report is not None:
            report.finish(f"reusing {found.path.name} (derived from the same ISO before)")
        return found
    patches = patches_for(info)
    size = info.size
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    src_hash, out_hash = hashlib.sha256(), hashlib.sha256()
    done = 0
    try:
        with source.open("rb") as fh, tmp.open("wb") as dst:
            buf = bytearray(CHUNK)
            while True:
                cancel.raise_if_cancelled()
                n = fh.readinto(buf)
                if not n:
                    break
                chunk = buf[:n]
                src_hash.update(chunk)
                _apply(chunk, done, patches)
                out_hash.update(chunk)
                dst.write(chunk)
                done += n
                if report is not None:
                    report.transfer(done, max(size, done))
            dst.flush()
            os.fsync(dst.fileno())
        if done != size:
            raise WizardError(
                "ISO changed while copying",
                f"{source.name} was {size} bytes when the copy began and {done} when it ended",
                remediation="wait until the download or copy has finished, then retry",
            )
        if src_hash.hexdigest() != expected:
            raise WizardError(
                "ISO changed since it was verified",
                f"{source.name} now has sha256 {src_hash.hexdigest()}, the verified one was {expected}",
                remediation="verify the ISO again (run again from the Verify files step) before deriving a copy",
            )
        problem = _same_boot(info, inspect_iso(tmp))
        if problem:
            raise WizardError("Unattended copy is wrong", f"{tmp.name}: {problem}", remediation="report this")
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    derived = Derived(out, expected, out_hash.hexdigest(), done, tuple(patches))
    _record(cache, derived)
    if report is not None:
        report.finish(f"{out.name}: " + ", ".join(f"{p.where} {p.old.decode()}→{p.new.decode()}" for p in patches))
    return derived


def derived_name(source: Path, source_sha256: str) -> str:
    """The file name of a source's unattended copy in the cache (the source's sha256 keeps copies apart)."""
    return f"{source.stem}-unattended-{source_sha256[:12]}{source.suffix or '.iso'}"


def derive_verified(
    source: Path,
    source_sha256: str,
    *,
    signature_verified: bool,
    cache: Path,
    report: Reporter | None = None,
    cancel: CancelToken | None = None,
) -> Derived:
    """The unattended copy of a source the Verify files step hashed (``source_sha256``) and, unless the source
    boots unattended already, whose signature it checked; in ``cache`` under :func:`derived_name`."""
    if not signature_verified and not inspect_iso(source).boots_unattended:
        raise WizardError(
            "ISO not verified",
            f"the signature of {source.name} was not checked, and an unattended copy is only derived from a "
            "verified ISO",
            remediation="put the ISO's .sig.bin beside it and files.public_key in the project, then run again "
            "(or use appliance.boot: console)",
        )
    out = cache / derived_name(source, source_sha256)
    return derive_unattended(source, out, expected_sha256=source_sha256, cache=cache, report=report, cancel=cancel)


class DeriveUnattendedJob(Job):
    """Makes (or reuses) the unattended copy of the verified appliance ISO in the wizard's cache. Facts: the
    copy's ``path``, ``sha256``, ``source_sha256``, ``size``, ``patches``, whether it was ``reused``, whether the
    source was ``unchanged`` (it boots unattended already) and what the copy ``boots``."""

    weight = 2.0

    def __init__(
        self, source: Path, source_sha256: str, *, signature_verified: bool, cache: Path, step: str = "media"
    ) -> None:
        self.source = source
        self.source_sha256 = source_sha256.lower()
        self.signature_verified = signature_verified
        self.cache = cache
        self.id = f"{step}/unattended"
        self.name = "Unattended copy of the ISO"

    def fingerprint(self) -> str:
        return f"{self.source_sha256}|{self.cache}|{self.signature_verified}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        derived = derive_verified(
            self.source,
            self.source_sha256,
            signature_verified=self.signature_verified,
            cache=self.cache,
            report=report,
            cancel=cancel,
        )
        return {**derived.to_dict(), "boots": inspect_iso(derived.path).summary()}
