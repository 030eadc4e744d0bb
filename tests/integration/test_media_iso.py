"""``palette-wizard media inspect|unattended`` on ISOs built here, checked with xorriso's own El Torito report."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.core.helpers import cli_env, run_cli
from wizard.appliance.media import inspect_iso
from wizard.appliance.unattended import cached, derive_unattended
from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled, WizardError
from wizard.core.integrity import hash_file
from wizard.core.progress import Progress
from wizard.lab.artifacts import appliance_iso, appliance_menu, make_key, sign_file

pytestmark = pytest.mark.media

OTHER_MENU = """set default=0
set timeout=3
menuentry "Kairos Installer" {
  linux /boot/kernel cdroot install-mode
}
menuentry "Kairos Installer (manual)" {
  linux /boot/kernel cdroot
}
"""


def xorriso_report(iso: Path) -> str:
    """xorriso's El Torito report and volume id, minus the lines about the image file itself."""
    xorriso = shutil.which("xorriso")
    if xorriso is None:
        pytest.fail("xorriso is not installed (apt-get install xorriso)", pytrace=False)
    out = subprocess.run(
        [xorriso, "-indev", str(iso), "-report_el_torito", "plain"], capture_output=True, text=True, check=True
    )
    keep = ("Volume id", "El Torito", "Boot record")
    return "\n".join(line for line in (out.stdout + out.stderr).splitlines() if line.startswith(keep))


def differing_offsets(a: Path, b: Path) -> list[int]:
    out = []
    with a.open("rb") as fa, b.open("rb") as fb:
        at = 0
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if not x and not y:
                return out
            out.extend(at + i for i in range(max(len(x), len(y))) if x[i : i + 1] != y[i : i + 1])
            at += len(x)


def signed_iso(folder: Path, size: int = 3 * 1024 * 1024, **kw: object) -> Path:
    key, _ = make_key(folder)
    iso = appliance_iso(folder / "palette-edge-installer.iso", size, **kw)  # type: ignore[arg-type]
    sign_file(key, iso, iso.with_name(iso.name + ".sig.bin"))
    return iso


def test_inspect_json_reports_a_menu_built_here(tmp_path: Path) -> None:
    iso = appliance_iso(tmp_path / "other.iso", volume_id="KAIROS_OTHER", menu=OTHER_MENU, config={})
    out = run_cli(["media", "inspect", str(iso), "--json"], cli_env(tmp_path / "home"))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["label"] == "KAIROS_OTHER" and doc["label_ok"] is False
    assert doc["menu"]["default_index"] == 0 and doc["menu"]["timeout"] == 3
    assert [e["kind"] for e in doc["menu"]["entries"]] == ["automatic", "manual"]
    assert doc["interactive_entry"] is None and doc["automatic_entry"] == 0 and doc["boots_unattended"] is True
    assert doc["config"] is None and doc["content_embedded"] is False
    text = run_cli(["media", "inspect", str(iso)], cli_env(tmp_path / "home")).stdout
    assert "* 0  Kairos Installer  [automatic]" in text and "KAIROS_OTHER" in text and "expected COS_LIVE" in text


def test_unattended_copy_changes_only_the_default_and_keeps_el_torito(tmp_path: Path) -> None:
    iso = signed_iso(tmp_path)
    out = tmp_path / "out" / "unattended.iso"
    env = cli_env(tmp_path / "home")
    done = run_cli(["media", "unattended", str(iso), "-o", str(out), "--json"], env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["reused"] is False and result["sha256"] == hash_file(out).sha256
    assert result["source_sha256"] == hash_file(iso).sha256
    diffs = differing_offsets(iso, out)
    assert len(diffs) == 1 and diffs == [result["patches"][0]["offset"]]
    with out.open("rb") as fh:
        fh.seek(diffs[0] - len("set default="))
        assert fh.read(len("set default=0")) == b"set default=0"
    assert xorriso_report(out) == xorriso_report(iso) and "'COS_LIVE'" in xorriso_report(out)
    info = inspect_iso(out)
    assert info.boots_unattended and info.default is not None and info.default.index == 0
    # A rerun reuses the copy: same file, not written again.
    mtime = out.stat().st_mtime_ns
    again = json.loads(run_cli(["media", "unattended", str(iso), "-o", str(out), "--json"], env).stdout)
    assert again["reused"] is True and out.stat().st_mtime_ns == mtime


def test_efi_image_menu_is_changed_too(tmp_path: Path) -> None:
    iso = signed_iso(tmp_path, efi_config=appliance_menu(default=2))
    out = tmp_path / "u.iso"
    done = run_cli(["media", "unattended", str(iso), "-o", str(out), "--json"], cli_env(tmp_path / "home"))
    assert done.returncode == 0, done.stderr
    patches = json.loads(done.stdout)["patches"]
    assert any("(EFI boot image)" in p["where"] for p in patches) and any("(ISO)" in p["where"] for p in patches)
    assert differing_offsets(iso, out) == sorted(p["offset"] for p in patches)
    assert xorriso_report(out) == xorriso_report(iso)
    assert all(c.config.default_index == 0 for c in inspect_iso(out).efi_configs if c.config.has_menu)


def test_signature_is_verified_before_anything_is_derived(tmp_path: Path) -> None:
    iso = signed_iso(tmp_path)
    make_key(tmp_path)  # another key replaces the public key: the signature no longer matches
    out = tmp_path / "u.iso"
    done = run_cli(["media", "unattended", str(iso), "-o", str(out)], cli_env(tmp_path / "home"))
    assert done.returncode != 0 and "does not match its signature" in done.stderr and not out.exists()
    iso.with_name(iso.name + ".sig.bin").unlink()
    done = run_cli(["media", "unattended", str(iso), "-o", str(out)], cli_env(tmp_path / "home"))
    assert done.returncode != 0 and "ISO signature missing" in done.stderr and not out.exists()


def test_a_source_that_changed_since_verification_yields_nothing(tmp_path: Path) -> None:
    iso = appliance_iso(tmp_path / "a.iso", 1024 * 1024)
    verified = hash_file(iso).sha256
    with iso.open("r+b") as fh:  # after verification, a byte outside the menu changes
        fh.seek(900 * 1024)
        fh.write(b"X")
    out = tmp_path / "u.iso"
    with pytest.raises(WizardError, match="changed since it was verified"):
        derive_unattended(iso, out, expected_sha256=verified, cache=tmp_path / "cache")
    assert not out.exists() and not list(tmp_path.glob(".u.iso.*"))
    assert cached(tmp_path / "cache", verified) is None


def test_copy_is_streamed_with_progress_and_cancellable(tmp_path: Path) -> None:
    iso = appliance_iso(tmp_path / "a.iso", 12 * 1024 * 1024, sparse=True)
    digest = hash_file(iso).sha256
    progress = Progress()
    progress.add_task("copy", "copy", "media")
    seen: list[int] = []
    cancel = CancelToken()

    reporter = progress.root().child(0.0, 1.0, task="copy")
    original = reporter.transfer

    def transfer(done: int, total: int, message: str | None = None) -> None:
        seen.append(done)
        original(done, total, message)
        if len(seen) == 2:
            cancel.cancel()

    reporter.transfer = transfer  # type: ignore[method-assign]
    out = tmp_path / "u.iso"
    with pytest.raises(Cancelled):
        derive_unattended(iso, out, expected_sha256=digest, cache=tmp_path / "cache", report=reporter, cancel=cancel)
    assert seen[:2] == [4 * 1024 * 1024, 8 * 1024 * 1024] and not out.exists()
    assert not list(tmp_path.glob(".u.iso.*"))
    derived = derive_unattended(iso, out, expected_sha256=digest, cache=tmp_path / "cache")
    assert derived.size == iso.stat().st_size and not derived.reused
