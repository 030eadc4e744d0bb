"""Appliance versions and editions: parsing what nodes say, the documented boundaries, the sizing table."""

from __future__ import annotations

import pytest

from wizard.appliance.versions import (
    ApplianceIdentity,
    Edition,
    Version,
    appliance_type,
    combine,
    edition_from_iso_config,
)
from wizard.core.checks.sizing import SIZES, size_result, size_tier, storage_result


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4.9.44", Version(4, 9, 44)),
        ("v4.9.44", Version(4, 9, 44)),
        (" 4.9.44-rc1+g1a2b3c ", Version(4, 9, 44)),
        ("V4.10.0", Version(4, 10, 0)),
        ("4.9", None),
        ("latest", None),
        ("", None),
        (None, None),
        (4.9, None),
    ],
)
def test_versions_are_read_loosely(text: object, expected: Version | None) -> None:
    assert Version.parse(text) == expected


def test_versions_order_numerically() -> None:
    assert Version(4, 9, 9) < Version(4, 9, 14) < Version(4, 10, 0)


@pytest.mark.parametrize(
    ("word", "edition"),
    [
        ("vertex", Edition.VERTEX),
        ("VerteX", Edition.VERTEX),
        ("palette-vertex", Edition.VERTEX),
        ("Palette VerteX", Edition.VERTEX),
        ("palette", Edition.PALETTE),
        (" Palette ", Edition.PALETTE),
        ("edge", None),
        (7, None),
    ],
)
def test_editions_are_read_loosely(word: object, edition: Edition | None) -> None:
    assert Edition.parse(word) is edition


def test_settings_and_iso_config_name_the_edition() -> None:
    assert appliance_type({"installationMode": "airgap", "applianceType": "vertex"}) is Edition.VERTEX
    assert appliance_type({"installationMode": "airgap"}) is None  # before 4.9.38 the field is absent
    assert appliance_type(None) is None
    assert edition_from_iso_config({"stylus": {"applianceType": "VerteX"}}) is Edition.VERTEX
    assert edition_from_iso_config({"stylus": {"site": {}}}) is None
    assert edition_from_iso_config({"stylus": "odd"}) is None


def test_the_lowest_node_version_decides() -> None:
    assert combine({"a": "4.9.44", "b": "v4.9.44"}) == (Version(4, 9, 44), [])
    version, notes = combine({"a": "4.9.44", "b": "4.9.10", "c": "??"})
    assert version == Version(4, 9, 10)
    assert any("different versions" in n for n in notes) and any("c reports no version" in n for n in notes)
    assert combine({"a": ""}) == (None, ["a reports no version it could be read from ('')"])


def test_identity_labels_and_round_trip() -> None:
    ident = ApplianceIdentity(Version(4, 9, 44), Edition.VERTEX, ("settings",), (("n1", "v4.9.44"),), False)
    assert ident.label == "VerteX 4.9.44" and ident.product == "VerteX"
    assert ident.full_iso is False and ident.before(Version(4, 9, 46)) is True
    assert ApplianceIdentity.from_dict(ident.to_dict()) == ident
    unknown = ApplianceIdentity()
    assert unknown.label == "Palette (version unknown)" and unknown.full_iso is None
    assert ApplianceIdentity.from_dict({"version": "x", "hosts": "bad"}) == unknown


def test_sizing_table() -> None:
    assert [t.name for t in SIZES] == ["Small", "Medium", "Large"]
    assert size_tier(8, 16) is SIZES[0]
    assert size_tier(16, 31) is SIZES[0]
    assert size_tier(16, 32) is SIZES[1]
    assert size_tier(64, 128) is SIZES[2]
    assert size_tier(4, 64) is None


def test_sizing_warns_below_medium() -> None:
    small = size_result("n1", 8, 16.7)  # a 16 GiB machine as its kernel reports it
    assert small.failed and small.details["size"] == "Small"
    assert "Small, for up to 1000 workload nodes; Medium (16 CPU / 32 GB) is recommended" in small.message
    assert not size_result("n1", 16, 31.3).failed
    assert size_result("n1", 4, 8).message == "4 CPU, 8 GB: below the Small size (8 CPU / 16 GB)"
    assert storage_result("n1", 740).failed and "750 GB per node" in storage_result("n1", 740).message
    assert not storage_result("n1", 800).failed
