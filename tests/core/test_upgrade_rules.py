"""The release notes' upgrade rules (wizard.appliance.upgrade): hops, versions in names and archives, scripts."""

from __future__ import annotations

import pytest

from wizard.appliance.upgrade import (
    archive_version,
    certificates_lost,
    path_problem,
    pre_upgrade_script,
    script_instructions,
    supported_path,
    values_reset,
    version_in_name,
)
from wizard.appliance.versions import Version
from wizard.core.checks.catalog import CATALOG

V = Version


def test_4_8_to_4_9_23_or_newer_is_refused_with_the_two_hop_path() -> None:
    problem = path_problem(V(4, 8, 47), V(4, 9, 44))
    assert problem is not None
    assert "4.8.47 → 4.9.14 → 4.9.44" in problem and "4.9.14 recommended" in problem
    assert supported_path(V(4, 8, 47), V(4, 9, 44)) == (V(4, 8, 47), V(4, 9, 14), V(4, 9, 44))
    # The boundary: 4.9.22 is still reachable in one hop, 4.9.23 is not.
    assert path_problem(V(4, 8, 47), V(4, 9, 22)) is None
    assert path_problem(V(4, 8, 30), V(4, 9, 23)) is not None
    assert path_problem(V(4, 9, 14), V(4, 9, 44)) is None
    assert path_problem(V(4, 9, 38), V(4, 9, 44)) is None


def test_downgrades_and_the_same_release_are_refused() -> None:
    assert "cannot be downgraded" in (path_problem(V(4, 9, 44), V(4, 9, 38)) or "")
    assert "already runs 4.9.44" in (path_problem(V(4, 9, 44), V(4, 9, 44)) or "")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("core-content-4.9.44-rehearsal.tar.zst", V(4, 9, 44)),
        ("palette-enterprise-appliance-v4.9.46.tar.zst", V(4, 9, 46)),
        ("content.tar.zst", None),  # no release in the name: read from the update archive instead
        ("bundle-4.9.38-to-4.9.44.tar.zst", None),  # two candidates: the name does not say which
    ],
)
def test_the_release_a_bundle_name_spells(name: str, expected: Version | None) -> None:
    assert version_in_name(name) == expected


def _details(profile_version: str = "1.0.0", name: str = "palette-management-appliance", mgmt: str = "4.7.16") -> dict:
    packs = [{"name": "edge-k8s", "version": "1.30.6"}, {"name": "spectro-mgmt-plane", "version": mgmt}]
    return {"clusterProfileDetails": [{"profileVersion": profile_version, "profileName": name, "packs": packs}]}


def test_the_release_an_update_archive_names_wherever_it_says_it() -> None:
    current = V(4, 9, 38)
    assert archive_version(_details(profile_version="4.9.44"), current) == V(4, 9, 44)
    assert archive_version(_details(name="palette-management-appliance-4.9.44"), current) == V(4, 9, 44)
    assert archive_version(_details(mgmt="4.9.44"), current) == V(4, 9, 44)
    # Nowhere: a profile's own numbering and an older pack are not the appliance's release.
    assert archive_version(_details(), current) is None
    assert archive_version(None, current) is None
    assert archive_version({"clusterProfileDetails": "oops"}, current) is None


def test_the_documented_pre_upgrade_scripts() -> None:
    script = pre_upgrade_script(V(4, 7, 15), nodes=1)
    assert script is not None and script.script == "change-pvc-access-mode.sh"
    text = script_instructions(script)
    assert "zot-system zot-pvc zot ReadWriteOnce" in text and "RWX to RWO" in text and "KUBECONFIG" in text
    ha = pre_upgrade_script(V(4, 7, 27), nodes=3)
    assert ha is not None and ha.script == "recreate.sh" and "lvm-ha" in script_instructions(ha)
    assert pre_upgrade_script(V(4, 7, 27), nodes=1) is None  # "not required for single node deployments"
    assert pre_upgrade_script(V(4, 9, 38), nodes=3) is None


def test_what_an_upgrade_loses_by_release() -> None:
    assert certificates_lost(V(4, 8, 47)) and certificates_lost(V(4, 9, 13))
    assert not certificates_lost(V(4, 8, 46)) and not certificates_lost(V(4, 9, 14))
    assert values_reset(V(4, 9, 21)) and not values_reset(V(4, 9, 22))


def test_every_upgrade_check_is_in_the_catalog_with_the_upgrade_page() -> None:
    ids = [c for c in CATALOG if c.startswith("upgrade.")]
    assert len(ids) == 9
    assert all(CATALOG[c].step == "upgrade" and CATALOG[c].remediation for c in ids)
