"""The check catalog, the report and overrides, and the checks that need no network peer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.projects import appliance_iso, random_file
from wizard.core.checks import (
    CATALOG,
    Category,
    CheckReport,
    CheckResult,
    CheckSeverity,
    Outcome,
    OverrideRefused,
    VerifiedFile,
    check_free_space,
    check_iso,
    check_verified,
    override,
)
from wizard.core.checks.catalog import failed, passed
from wizard.core.journal import Journal

STEPS = {"project", "network", "files", "nodes", "provider", "upgrade"}  # upgrade: the Upgrade page's checks


def by_check(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.check: r for r in results}


def test_catalog_entries_are_complete() -> None:
    for check_id, c in CATALOG.items():
        assert check_id == c.id and "." in c.id and c.id == c.id.lower()
        assert isinstance(c.category, Category) and isinstance(c.severity, CheckSeverity)
        assert c.title and c.remediation and c.step in STEPS


def test_free_space_passes_and_fails_on_threshold(tmp_path: Path) -> None:
    folders = {"state": tmp_path / "state-not-created-yet", "logs": tmp_path}
    ok = check_free_space(folders, 1)
    assert [r.outcome for r in ok] == [Outcome.PASS, Outcome.PASS]
    short = check_free_space(folders, 1 << 60)
    assert all(r.outcome is Outcome.FAIL for r in short)
    assert "GiB needed" in short[0].message and short[0].details["required"] == 1 << 60


def test_appliance_iso_is_uefi_bootable_and_recognised(tmp_path: Path) -> None:
    results = by_check(check_iso(appliance_iso(tmp_path / "a.iso", 3 * 1024 * 1024)))
    assert {r.outcome for r in results.values()} == {Outcome.PASS}
    assert results["files.iso-format"].details["volume_id"] == "COS_LIVE"
    assert "0xEF" in results["files.iso-uefi"].details["platforms"]
    assert "heuristic" in results["files.iso-label"].method[0]


def test_not_an_iso_is_a_blocker(tmp_path: Path) -> None:
    results = check_iso(random_file(tmp_path / "a.iso", 256 * 1024))
    assert [(r.check, r.outcome) for r in results] == [("files.iso-format", Outcome.FAIL)]
    truncated = tmp_path / "t.iso"
    truncated.write_bytes(appliance_iso(tmp_path / "b.iso").read_bytes()[: 17 * 2048])
    assert check_iso(truncated)[0].failed


def test_bios_only_iso_is_not_uefi_and_odd_label_warns(tmp_path: Path) -> None:
    results = by_check(check_iso(appliance_iso(tmp_path / "a.iso", efi=False, volume_id="WINDOWS_SERVER")))
    assert results["files.iso-format"].outcome is Outcome.PASS
    assert results["files.iso-uefi"].failed and "BIOS only" in results["files.iso-uefi"].message
    assert results["files.iso-label"].failed and results["files.iso-label"].definition.severity is CheckSeverity.WARNING
    plain = by_check(check_iso(appliance_iso(tmp_path / "b.iso", efi=False, bios=False)))
    assert "no El Torito" in plain["files.iso-uefi"].message


def test_verified_files_reference_the_verify_steps_results() -> None:
    results = check_verified(
        [
            VerifiedFile("files.iso", "ISO", {"sha256": "ab" * 32, "size": 1, "signature_verified": True}),
            VerifiedFile(
                "files.content_bundle", "Bundle", {"sha256": "cd" * 32, "size": 1, "signature_verified": False}
            ),
            VerifiedFile("files.pack_bundles[0]", "Pack", None),
        ]
    )
    outcomes = [(r.check, r.outcome, r.target.split(" ")[0]) for r in results]
    assert outcomes == [
        ("files.verified", Outcome.PASS, "ISO"),
        ("files.signed", Outcome.PASS, "ISO"),
        ("files.verified", Outcome.PASS, "Bundle"),
        ("files.signed", Outcome.FAIL, "Bundle"),
        ("files.verified", Outcome.FAIL, "Pack"),
    ]


def test_warning_override_is_recorded_and_reported(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.json", "p")
    override(journal, "net.dns-reverse", "PTR records are managed by another team; ticket NET-42")
    assert journal.overrides[0]["check"] == "net.dns-reverse"
    assert "NET-42" in Journal.open(tmp_path / "j.json", "p").overrides[0]["reason"]
    results = (
        failed("net.dns-reverse", "127.0.10.11: no PTR record", "node-1"),
        failed("net.dns-forward", "edge-node-1.lab: no A record", "node-1"),
        failed("net.vip-free", "127.0.10.50 is in use: port 6443 accepted", "VIP"),
        passed("host.free-space", "80 GiB free", "logs"),
    )
    report = CheckReport(results, tuple(journal.overrides), "palette-mgmt")
    assert [r.check for r in report.blockers()] == ["net.vip-free"]
    assert [r.check for r in report.warnings()] == ["net.dns-forward"]
    assert [(r.check, why) for r, why in report.overridden()] == [("net.dns-reverse", journal.overrides[0]["reason"])]
    data = json.loads(report.to_json())
    assert data["summary"] == {"checks": 4, "passed": 1, "blockers": 1, "warnings": 1, "overridden": 1}
    assert data["results"][0]["overridden"].endswith("NET-42")
    assert data["results"][2]["remediation"] == CATALOG["net.vip-free"].remediation
    page = report.to_html()
    assert "NET-42" in page and "Overridden:" in page and "Blocked: 1 blocker" in page


def test_blocker_override_and_empty_reason_are_refused(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.json", "p")
    with pytest.raises(OverrideRefused, match="Blockers cannot be overridden"):
        override(journal, "net.vip-free", "I know what I am doing")
    with pytest.raises(OverrideRefused, match="needs a reason"):
        override(journal, "net.dns-reverse", "   ")
    with pytest.raises(OverrideRefused, match="no preflight check"):
        override(journal, "net.nope", "why not")
    assert journal.overrides == []
    # A blocker override written into the journal by hand changes nothing.
    journal.add_override("net.vip-free", "hand-edited")
    report = CheckReport((failed("net.vip-free", "in use", "VIP"),), tuple(journal.overrides))
    assert len(report.blockers()) == 1 and report.overridden() == []


def test_html_report_escapes_everything() -> None:
    evil = "<script>alert('x')</script>"
    report = CheckReport(
        (failed("net.dns-forward", f"name {evil} & more", evil, method=(evil,)),),
        ({"check": "net.dns-forward", "reason": evil},),
        project=evil,
    )
    page = report.to_html()
    assert "<script>" not in page and "&lt;script&gt;" in page and "&amp; more" in page
    assert page.startswith("<!DOCTYPE html>") and "<link" not in page and "src=" not in page


def test_results_round_trip_through_dicts() -> None:
    r = failed("net.ntp-offset", "+5.00 s", "ntp", details={"offset": 5.0}, method=("SNTPv4",))
    assert CheckResult.from_dict(r.to_dict()).to_dict() == r.to_dict()


def test_provider_checks_join_the_catalog() -> None:
    """Provider modules define their checks beside the code that runs them; the catalog holds them all."""
    from wizard.core.checks.catalog import Category

    for check_id in (
        "maas.reachable",
        "maas.machines",
        "maas.power-type",
        "maas.resources",
        "vsphere.privileges",
        "vsphere.datastore-space",
        "vsphere.capacity",
        "vsphere.network",
        "vsphere.zone-tags",
        "vsphere.vm-firmware",
        "redfish.reachable",
        "redfish.virtual-media",
        "redfish.uefi",
        "redfish.secure-boot",
        "redfish.resources",
    ):
        check = CATALOG[check_id]
        assert check.category is Category.PROVIDER and check.step in ("provider", "nodes") and check.remediation
    assert len(set(CATALOG)) == len(CATALOG)
